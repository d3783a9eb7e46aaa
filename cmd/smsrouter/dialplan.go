package main

import (
	"context"
	"flag"
	"strings"

	"smsrouter/asteriskconf/dialplan"
)

// cmdDialplan is `smsrouter dialplan`: prints the extensions.conf contexts
// (or with --manager the manager.conf user) for this configuration.
func cmdDialplan(_ context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("dialplan", flag.ContinueOnError)
	var c common
	c.register(fs, false)
	manager := fs.Bool("manager", false, "print the manager.conf user of the SIP (T) channel instead")
	agiAddr := fs.String("agi", "", "FastAGI address the dialplan calls (default: [agi] listen, else "+dialplan.DefaultAGIAddr+")")
	extens := fs.String("smsc-exten", dialplan.DefaultSMSCExten, "comma-separated numbers analogue SMS phones dial")
	smscCtx := fs.String("smsc-context", dialplan.DefaultSMSCContext, "context of the SMS Centre extension")
	msgCtx := fs.String("messages-context", dialplan.DefaultMessagesContext, "context of incoming SIP MESSAGEs")
	drain := fs.String("drain", "", "command line System() runs after each SMS Centre call (e.g. \"/usr/local/bin/smsrouter drain -q --config /etc/asterisk/smsrouter.toml\"); empty when serve runs")
	route := fs.Bool("route", false, "SIP MESSAGEs wait for the router's decision (route) instead of only being queued (postsms)")
	user := fs.String("user", dialplan.DefaultManagerUser, "with --manager: the AMI user name")
	secret := fs.String("secret", "", "with --manager: the AMI secret (default: the placeholder "+dialplan.SecretPlaceholder+")")
	if !parseFlags(fs, e, args) || fs.NArg() > 0 {
		return exitUsage
	}
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	var out []byte
	if *manager {
		out, err = dialplan.Manager(dialplan.ManagerOptions{User: *user, Secret: *secret})
	} else {
		addr := *agiAddr
		if addr == "" {
			addr = cfg.AGI.Listen
		}
		out, err = dialplan.Generate(dialplan.Options{
			AGIAddr: addr, SMSCNumber: cfg.SMSCNumber, SMSCExtens: strings.Split(*extens, ","),
			SMSCContext: *smscCtx, MessagesContext: *msgCtx, Drain: *drain, Route: *route,
		})
	}
	if err != nil {
		return fail(e, exitUsage, err)
	}
	e.stdout.Write(out)
	return exitOK
}
