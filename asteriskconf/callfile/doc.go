// Package callfile writes, places and reads Asterisk call files: the
// small "Key: value" files that pbx_spool picks up from
// <astspooldir>/outgoing to originate a call.
//
// Three jobs live here:
//
//   - [CallFile.Marshal] turns a call description into bytes. It refuses,
//     rather than silently alters, any value pbx_spool would read back
//     differently (control characters, a '#' that would start a comment,
//     leading or trailing blanks, over-long lines). The one rewriting it
//     does is the escape pbx_spool itself defines: ';' is written "\;".
//   - [Place] and [PlaceFile] put a file into a directory Asterisk watches
//     so that Asterisk only ever sees a whole file under a name that was not
//     in use: write to a temporary file on the same filesystem, fsync, set
//     the mtime for a delayed start, then rename without replacing.
//   - [Parse] reads a file from outgoing/ or outgoing_done/ the way pbx_spool
//     does, including the bookkeeping lines Asterisk appends (StartRetry,
//     EndRetry, …) and the final Status line of an archived file.
//
// The rules mirror pbx/pbx_spool.c of Asterisk 22 (see SPEC.md §3) and are
// checked against files captured from a real Asterisk.
package callfile
