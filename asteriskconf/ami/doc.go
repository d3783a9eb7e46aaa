// Package ami is smsrouter's client for the Asterisk Manager Interface (AMI).
//
// One Client keeps one long-lived, logged-in TCP connection to Asterisk and
// shares it between any number of goroutines. A single reader goroutine owns
// the socket's read side; it matches every Response to the request that caused
// it by ActionID (events may arrive anywhere in between, including between a
// request and its reply), collects multi-packet list responses
// ("EventList: start" … "EventList: Complete"), and fans events out to
// subscribers through bounded channels that never block the reader: when a
// subscriber is slow its events are dropped and counted.
//
// The connection is kept alive with Ping. When it breaks, requests in flight
// fail with ErrDisconnected (a temporary error), the client reconnects with
// exponential backoff and logs in again on its own. Requests made while the
// client is disconnected fail at once with ErrDisconnected and ErrNotSent
// rather than waiting, so that callers (store-and-forward) can hold the
// message and retry on their own schedule.
//
// The wire rules of Asterisk's manager.c (SPEC.md §5.1) are enforced before
// anything is written: a line, including its CRLF, may not exceed 1024 bytes,
// a packet may not carry more than 128 headers, and CR, LF or NUL in a header
// is refused instead of being allowed to inject extra headers. The reader is
// bounded as well (MaxReadLine, MaxReadHeaders, MaxReadPacket) because the
// peer is not trusted: a hostile or broken peer causes a protocol error and a
// reconnect, never unbounded memory use.
//
// Why our own client: github.com/heltonmarx/goami is only obtainable as
// v1.0.0 from 2014 (LGPL-3), has no MessageSend and swallows read errors, and
// neither it nor the other Go AMI clients we looked at can match replies to
// concurrent requests reliably; some drop events or leak goroutines.
package ami
