//go:build !unix

package voice

import "os/exec"

// isolate falls back to killing only the engine itself where process
// groups do not exist.
func isolate(cmd *exec.Cmd) (reap func()) { return func() {} }
