package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// renderFunc renders one kind of artefact from the command line; args are the
// flags after the renderer's name (`smsrouter render KIND …`).
type renderFunc func(ctx context.Context, e *env, args []string) int

// renderers maps `smsrouter render KIND` to its implementation; each channel's
// renderer adds one entry here and keeps its code in a file of its own.
var renderers = map[string]renderFunc{
	"fax":   cmdRenderFax,
	"voice": cmdRenderVoice,
}

// cmdRender dispatches `smsrouter render KIND [flags]` to the renderer for KIND, so
// an admin can see exactly what a channel would deliver without a spool or database.
func cmdRender(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(e.stderr, "usage: smsrouter render {%s} [flags]\n", strings.Join(renderKinds(), "|"))
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	r, ok := renderers[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "smsrouter render: unknown kind %q (want one of %s)\n", args[0], strings.Join(renderKinds(), ", "))
		return exitUsage
	}
	return r(ctx, e, args[1:])
}

func renderKinds() []string {
	kinds := make([]string, 0, len(renderers))
	for k := range renderers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}
