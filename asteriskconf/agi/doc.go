// Package agi speaks the Asterisk Gateway Interface over the network
// (FastAGI): it reads the environment block Asterisk sends when the dialplan
// runs AGI(agi://host/script,…), sends commands with correctly quoted
// arguments, parses the replies, and serves many such connections at once.
//
// # Why our own
//
// github.com/CyCoreSystems/agi v0.6.4, the only version the module proxy
// serves, gets three things wrong that matter here: after an unprompted
// "HANGUP" line its reply stream shifts by one, so a GET VARIABLE can return
// the previous command's value; it cannot parse the multi-line 520 usage
// reply of Asterisk builds with XML documentation; and it does not quote
// arguments, so a value with a space becomes two arguments. This package is
// small, follows res_agi.c as observed on a real Asterisk 22 (fixtures in
// asterisk/fixtures/agi), and treats every reply line it cannot place as a
// reason to stop talking rather than to guess.
//
// # Protocol, as implemented
//
//   - Lines end in LF only; a CR is never sent (Asterisk would keep it).
//   - The environment block is "key: value" lines ending with an empty line.
//     Every key is kept, in order; agi_arg_1…N are the extra AGI() arguments.
//   - A command is one line of words. Asterisk splits on space and tab,
//     double quotes group, a backslash escapes the next character; Quote
//     produces exactly what that parser reads back. CR, LF and NUL cannot be
//     carried and are refused. A command line is limited to 8190 bytes
//     because Asterisk reads commands into an 8 KiB buffer and would run the
//     rest of a longer line as a second command.
//   - Replies: "200 result=N", optionally " (data)" and " key=value" extras
//     (endpos=…); 510 (unknown command); 511 (not permitted on a dead
//     channel); 520 either as one line (builds without XML docs) or as
//     "520-…", usage lines, "520 End of proper usage." (builds with docs).
//   - "HANGUP" lines arrive unprompted when the channel hangs up — before a
//     reply, between replies, and once more after the server closes. They
//     are recorded (Session.Hungup) and never taken as a reply.
//   - A value containing a newline cannot be carried unambiguously: Asterisk
//     writes it raw. An unterminated "(data" is joined with the following
//     lines until one ends in ")"; anything that still does not parse makes
//     the session unusable. The dialplan should Base64-encode such values
//     (MSG_B64) before they reach AGI.
//
// # Failure model
//
// A Session becomes unusable after any I/O error, timeout, context
// cancellation or unparseable reply, because from then on a reply could be
// attributed to the wrong command; every later call returns that first
// error. Replies 510, 511 and 520 are ordinary errors (ErrInvalidCommand,
// ErrHangup, *UsageError) and the session stays usable.
//
// The Server routes each connection by agi_network_script (query stripped
// and parsed into Session.Query), serves every connection concurrently from
// the moment it is accepted, bounds open connections, running handlers,
// memory and time per connection (the environment block first), counts what
// it turns away (Stats, Observe), recovers handler panics and shuts down
// gracefully; see Server.
package agi
