package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"sync/atomic"
)

// logOutput is where log lines go: w (stderr, which journald collects under
// systemd) or, with [log] output = "syslog", the local syslog daemon. A syslog
// that cannot be reached falls back to w with a line saying so, because losing
// the log must never stop message delivery.
func logOutput(w io.Writer, lc LogConfig) io.Writer {
	if lc.Output != "syslog" {
		return w
	}
	sl, err := syslog.New(syslog.LOG_INFO|syslog.LOG_MAIL, "smsrouter")
	if err != nil {
		fmt.Fprintf(w, "smsrouter: syslog unavailable, logging to stderr: %v\n", err)
		return w
	}
	return sl
}

// swapHandler forwards to a handler that can be replaced while the process
// runs: serve's loggers, handed to the router and the listeners once, follow
// a reloaded [log] section through it.
type swapHandler struct {
	target *atomic.Pointer[slog.Handler]
	// with are the WithAttrs and WithGroup calls made on this logger, in
	// order, replayed on whichever handler is current.
	with []func(slog.Handler) slog.Handler
}

func newSwapHandler(h slog.Handler) *swapHandler {
	p := &atomic.Pointer[slog.Handler]{}
	p.Store(&h)
	return &swapHandler{target: p}
}

// set replaces the handler every logger made from this one writes to.
func (h *swapHandler) set(to slog.Handler) { h.target.Store(&to) }

func (h *swapHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return (*h.target.Load()).Enabled(ctx, l)
}

func (h *swapHandler) Handle(ctx context.Context, r slog.Record) error {
	t := *h.target.Load()
	for _, w := range h.with {
		t = w(t)
	}
	return t.Handle(ctx, r)
}

func (h *swapHandler) then(w func(slog.Handler) slog.Handler) *swapHandler {
	return &swapHandler{target: h.target, with: append(append([]func(slog.Handler) slog.Handler(nil), h.with...), w)}
}

func (h *swapHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.then(func(t slog.Handler) slog.Handler { return t.WithAttrs(as) })
}

func (h *swapHandler) WithGroup(name string) slog.Handler {
	return h.then(func(t slog.Handler) slog.Handler { return t.WithGroup(name) })
}
