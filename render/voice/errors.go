package voice

import "errors"

// ErrEngineFailed marks a temporary failure of the TTS engine: it timed out,
// was killed, exited non-zero, wrote more than the output cap, or wrote
// something that is not a usable WAV. Retrying later may succeed.
var ErrEngineFailed = errors.New("tts engine failed")

// ErrUnspeakable marks a permanent failure: the request cannot be rendered
// by any retry (for example the composed text is empty or longer than the
// configured limit).
var ErrUnspeakable = errors.New("text cannot be spoken")
