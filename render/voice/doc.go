// Package voice turns a short message into a telephone-ready sound file:
// it composes the sentence to speak ("Message from 5 5 5 1 2 3 4. …"), runs
// an offline text-to-speech engine (espeak-ng, flite or festival's text2wave)
// as a sandboxed subprocess, and converts whatever WAV the engine wrote into
// the only format Asterisk's Playback accepts under a ".wav" name: RIFF/WAVE,
// PCM, mono, 16-bit, exactly 8000 Hz (see SPEC §7).
//
// The package is pure: it never touches the spool, the database or
// Asterisk. Render returns the WAV bytes; the caller writes them atomically.
//
// Errors tell the caller what to do next: errors.Is(err, ErrEngineFailed)
// means the engine hung, crashed, exited non-zero or produced garbage — keep
// the message queued and retry; errors.Is(err, ErrUnspeakable) means no retry
// can ever succeed (nothing left to say, or far too much) — bounce it.
package voice
