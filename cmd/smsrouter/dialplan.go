package main

import (
	"context"
	"fmt"
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
		// [dialplan] in the config, each flag given overriding its key: what
		// doctor compares the running dialplan with is what this prints
		// without flags.
		var o dialplan.Options
		o, err = cfg.dialplanOptions()
		if err != nil {
			return fail(e, exitUsage, fmt.Errorf("[dialplan] %w", err))
		}
		for _, set := range []struct {
			dst *string
			v   string
		}{{&o.AGIAddr, f.agiAddr}, {&o.SMSCContext, f.smscCtx}, {&o.MessagesContext, f.msgCtx}, {&o.Drain, f.drain}} {
			if set.v != "" {
				*set.dst = set.v
			}
		}
		if f.extens != "" {
			o.SMSCExtens = strings.Split(f.extens, ",")
		}
		o.Route = o.Route || f.route
		out, err = dialplan.Generate(o)
	}
	if err != nil {
		return fail(e, exitUsage, err)
	}
	e.stdout.Write(out)
	return exitOK
}
