//go:build unix

package voice

import (
	"os/exec"
	"syscall"
)

// isolate starts the engine in its own process group and kills the whole
// group on timeout: engines that are scripts (text2wave, wrappers) would
// otherwise leave their children running. The returned function kills
// whatever is left of the group once the engine itself has exited, so a
// straggler that escaped into the background cannot outlive the run.
func isolate(cmd *exec.Cmd) (reap func()) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // ESRCH: nothing left, fine
		}
	}
}
