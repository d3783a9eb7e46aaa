package callfile

import (
	"errors"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pbx_spool acts on inotify events. A placed file must arrive with a
// single IN_MOVED_TO and never be created, written or changed inside the
// watched directory.
func TestPlaceOnlyRenames(t *testing.T) {
	out, tmp := spoolDirs(t)
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer unix.Close(fd)
	mask := uint32(unix.IN_CREATE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_DELETE)
	if _, err := unix.InotifyAddWatch(fd, out, mask); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := range 20 {
		name := fmt.Sprintf("c%02d.call", i)
		want[name] = true
		notBefore := time.Time{}
		if i%2 == 1 {
			notBefore = time.Now().Add(time.Hour)
		}
		if _, err := Place(out, tmp, name, []byte("Channel: a/b\nApplication: A\n"), notBefore); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64<<10)
	got := map[string]bool{}
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			name := string(nameBytes[:clen(nameBytes)])
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask != unix.IN_MOVED_TO {
				t.Errorf("event %#x on %q, want only IN_MOVED_TO", ev.Mask, name)
				continue
			}
			if got[name] {
				t.Errorf("second IN_MOVED_TO for %q", name)
			}
			got[name] = true
		}
	}
	for name := range want {
		if !got[name] {
			t.Errorf("no IN_MOVED_TO for %q", name)
		}
	}
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}
