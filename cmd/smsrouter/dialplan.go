package main

import (
	"context"
	"strings"

	"smsrouter/asteriskconf/dialplan"
)

// dialplanFlags are `smsrouter dialplan`'s options (cli.go declares them).
type dialplanFlags struct {
	manager, route                                        bool
	agiAddr, extens, smscCtx, msgCtx, drain, user, secret string
}

// cmdDialplan is `smsrouter dialplan`: prints the extensions.conf contexts
// (or with --manager the manager.conf user) for this configuration.
func cmdDialplan(_ context.Context, e *env, c *common, f dialplanFlags) int {
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	var out []byte
	if f.manager {
		out, err = dialplan.Manager(dialplan.ManagerOptions{User: f.user, Secret: f.secret})
	} else {
		addr := f.agiAddr
		if addr == "" {
			addr = cfg.AGI.Listen
		}
		out, err = dialplan.Generate(dialplan.Options{
			AGIAddr: addr, SMSCNumber: cfg.SMSCNumber, SMSCExtens: strings.Split(f.extens, ","),
			SMSCContext: f.smscCtx, MessagesContext: f.msgCtx, Drain: f.drain, Route: f.route,
		})
	}
	if err != nil {
		return fail(e, exitUsage, err)
	}
	e.stdout.Write(out)
	return exitOK
}
