package main

import (
	"fmt"
	"io"
	"log/syslog"
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
