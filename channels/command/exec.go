package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"smsrouter/channels"
)

// credential is the user exec rules run as; nil runs them as ourselves.
type credential struct {
	name     string
	uid, gid uint32
}

// lookupCredential picks the user programs run as. Only root can switch user, and
// only root needs to: anything else already is unprivileged.
func lookupCredential(name string) (*credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if name == "" {
		name = "nobody"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s has no numeric uid/gid", name)
	}
	if uid == 0 {
		return nil, fmt.Errorf("user %s is root; name an unprivileged user", name)
	}
	return &credential{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
}

type execResult struct {
	stdout, stderr string
	exit           int
}

// errFlag refuses a template value that would reach the program as an option.
var errFlag = errors.New("an argument from the message starts with '-' before a \"--\" in argv")

// execArgv fills the argv templates. Each template gives exactly one argument
// whatever it contains (spaces, quotes, $(…), newlines): there is no shell to split
// or interpret it. A value from the message that starts with '-' is allowed only
// after a literal "--", where programs no longer read options.
func (r *rule) execArgv(d *Data) ([]string, error) {
	argv := []string{r.Argv[0]}
	for k, t := range r.argv {
		v, err := render(t, d)
		if err != nil {
			return nil, fmt.Errorf("argv[%d]: %w", k+1, err)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("argv[%d]: contains a NUL byte", k+1)
		}
		// "--count={{…}}" is the config's own option; only a value that starts
		// with '-' because of the message is refused.
		fromMessage := strings.Contains(r.Argv[k+1], "{{") && !strings.HasPrefix(r.Argv[k+1], "-")
		if fromMessage && strings.HasPrefix(v, "-") && (r.dashdash < 0 || k+1 < r.dashdash) {
			return nil, fmt.Errorf("argv[%d] %q: %w", k+1, clip(v, 40), errFlag)
		}
		argv = append(argv, v)
	}
	return argv, nil
}

// exec runs the rule's program. A timeout is temporary (errTemporary); a program
// that cannot be started, or an argument refused, is a definite failure.
func (c *Channel) exec(ctx context.Context, r *rule, d *Data, m channels.Message) (execResult, error) {
	argv, err := r.execArgv(d)
	if err != nil {
		return execResult{}, err
	}
	stdin, err := render(r.stdin, d)
	if err != nil {
		return execResult{}, fmt.Errorf("stdin: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout.Duration)
	defer cancel()

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
		"SMS_FROM=" + m.From, "SMS_TO=" + m.To, "SMS_ID=" + m.ID,
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr cappedBuffer
	stdout.limit, stderr.limit = r.MaxOutput, r.MaxOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A process group of its own, so a timeout kills whatever the program started
	// too (ping's children, a pipeline in a script).
	attr := &syscall.SysProcAttr{Setpgid: true}
	if c.cred != nil {
		attr.Credential = &syscall.Credential{Uid: c.cred.uid, Gid: c.cred.gid, Groups: []uint32{}}
	}
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child that escaped the group could keep our pipes open; stop waiting for
	// it a little after the kill.
	cmd.WaitDelay = time.Second

	err = cmd.Start()
	if err != nil {
		return execResult{}, fmt.Errorf("start %s: %w", argv[0], err)
	}
	err = cmd.Wait()
	// Leftover background children die with the group even after a clean exit.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if ctx.Err() != nil {
		return execResult{}, fmt.Errorf("%s: killed after %s: %w", argv[0], r.Timeout.Duration, errTemporary)
	}
	res := execResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.exit = ee.ExitCode()
		if res.exit < 0 {
			res.exit = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
		}
	case errors.Is(err, exec.ErrWaitDelay):
	default:
		return execResult{}, fmt.Errorf("%s: %w", argv[0], err)
	}
	return res, nil
}

// cappedBuffer keeps the first limit bytes and discards the rest, still reading
// so the program is not blocked on a full pipe.
type cappedBuffer struct {
	buf     []byte
	limit   int
	dropped int64
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	n := min(max(b.limit-len(b.buf), 0), len(p))
	b.buf = append(b.buf, p[:n]...)
	b.dropped += int64(len(p) - n)
	return len(p), nil
}

func (b *cappedBuffer) String() string { return string(b.buf) }

var _ io.Writer = (*cappedBuffer)(nil)

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
