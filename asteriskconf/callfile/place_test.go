package callfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// spoolDirs returns an outgoing and a tmp directory on one filesystem.
func spoolDirs(t testing.TB) (outgoing, tmp string) {
	t.Helper()
	root := t.TempDir()
	outgoing, tmp = filepath.Join(root, "outgoing"), filepath.Join(root, "tmp")
	for _, d := range []string{outgoing, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return outgoing, tmp
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestPlace(t *testing.T) {
	out, tmp := spoolDirs(t)
	data := []byte("Channel: Local/1@x\nApplication: A\n")
	path, err := Place(out, tmp, "sms-1.call", data, time.Time{})
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	if want := filepath.Join(out, "sms-1.call"); path != want {
		t.Errorf("path = %q, want %q", path, want)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("placed file = %q, %v; want %q", got, err, data)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("mode = %v, want 0660", fi.Mode().Perm())
	}
	if d := time.Since(fi.ModTime()); d < -time.Second || d > time.Minute {
		t.Errorf("mtime %v is not about now", fi.ModTime())
	}
	if n := dirNames(t, tmp); len(n) != 0 {
		t.Errorf("temporary files left behind: %q", n)
	}
}

func TestPlaceFileMode(t *testing.T) {
	out, tmp := spoolDirs(t)
	path, err := PlaceFile(out, tmp, "0.1795239666-21722", []byte("ud#41\n"), 0o640, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
	}
}

func TestPlaceFutureMtime(t *testing.T) {
	out, tmp := spoolDirs(t)
	tests := []struct {
		name      string
		notBefore time.Time
		want      time.Time // zero: about now
	}{
		{"whole second", time.Unix(4102444800, 0), time.Unix(4102444800, 0)},
		{"rounded up", time.Unix(4102444800, 300_000_000), time.Unix(4102444801, 0)},
		{"past", time.Now().Add(-time.Hour), time.Time{}},
		{"zero", time.Time{}, time.Time{}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, err := Place(out, tmp, fmt.Sprintf("c%d", i), []byte("Channel: a/b\n"), tt.notBefore)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.IsZero() {
				if d := time.Since(fi.ModTime()); d < -time.Second || d > time.Minute {
					t.Errorf("mtime = %v, want about now", fi.ModTime())
				}
			} else if !fi.ModTime().Equal(tt.want) {
				t.Errorf("mtime = %v, want %v", fi.ModTime(), tt.want)
			}
		})
	}
}

func TestPlaceRefusesDuplicate(t *testing.T) {
	out, tmp := spoolDirs(t)
	if _, err := Place(out, tmp, "dup", []byte("first\n"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	_, err := Place(out, tmp, "dup", []byte("second\n"), time.Time{})
	if !errors.Is(err, ErrExists) || !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Place: err = %v, want ErrExists and fs.ErrExist", err)
	}
	got, _ := os.ReadFile(filepath.Join(out, "dup"))
	if string(got) != "first\n" {
		t.Errorf("existing file was changed to %q", got)
	}
	if n := dirNames(t, tmp); len(n) != 0 {
		t.Errorf("temporary files left behind: %q", n)
	}
}

// Many writers racing for one name: exactly one wins.
func TestPlaceDuplicateRace(t *testing.T) {
	out, tmp := spoolDirs(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = Place(out, tmp, "race", []byte(fmt.Sprintf("writer %d\n", i)), time.Time{}) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrExists):
			t.Errorf("unexpected error %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d writers succeeded, want 1", won)
	}
}

func TestPlaceBadNames(t *testing.T) {
	out, tmp := spoolDirs(t)
	for _, name := range []string{"", ".", "..", ".hidden", "a/b", "../x", "/abs", "a\nb", "a\x00b", "a\x7fb", strings.Repeat("n", maxName+1)} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			_, err := Place(out, tmp, name, []byte("x\n"), time.Time{})
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if n := dirNames(t, out); len(n) != 0 {
		t.Errorf("files placed: %q", n)
	}
	if _, err := Place(out, tmp, strings.Repeat("n", maxName), []byte("x\n"), time.Time{}); err != nil {
		t.Errorf("name of maxName bytes refused: %v", err)
	}
}

func TestPlaceBadDirs(t *testing.T) {
	out, tmp := spoolDirs(t)
	tests := []struct{ name, dir, tmp string }{
		{"tmp is target", out, out},
		{"tmp is target via dot", out, out + "/."},
		{"missing target", filepath.Join(out, "nope"), tmp},
		{"missing tmp", out, filepath.Join(tmp, "nope")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Place(tt.dir, tt.tmp, "x", []byte("x\n"), time.Time{}); err == nil {
				t.Error("Place succeeded")
			}
		})
	}
	if n := dirNames(t, out); len(n) != 0 {
		t.Errorf("files placed: %q", n)
	}
}

// otherFS returns a directory on a different filesystem from t.TempDir(),
// or skips.
func otherFS(t *testing.T) (dir, other string) {
	t.Helper()
	dir = t.TempDir()
	shm, err := os.MkdirTemp("/dev/shm", "callfile-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	a, _ := os.Stat(dir)
	b, _ := os.Stat(shm)
	if da, db, ok := devices(a, b); !ok || da == db {
		t.Skip("/dev/shm is on the same filesystem as the test directory")
	}
	return dir, shm
}

func TestPlaceCrossDevice(t *testing.T) {
	dir, shm := otherFS(t)
	_, err := Place(dir, shm, "x", []byte("x\n"), time.Time{})
	if !errors.Is(err, ErrCrossDevice) {
		t.Fatalf("err = %v, want ErrCrossDevice", err)
	}
	if !strings.Contains(err.Error(), shm) {
		t.Errorf("error %q does not name the temporary directory", err)
	}
	// The rename itself is the final check (bind mounts share a device
	// number yet cannot rename across): it must report EXDEV too.
	src := filepath.Join(shm, "src")
	if err := os.WriteFile(src, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := renameNoReplace(src, filepath.Join(dir, "dst")); !errors.Is(err, syscall.EXDEV) {
		t.Errorf("renameNoReplace across filesystems: %v, want EXDEV", err)
	}
}

// A reader polling the directory the way pbx_spool's start-up scan does
// must only ever see complete files.
func TestPlaceReaderSeesWholeFiles(t *testing.T) {
	out, tmp := spoolDirs(t)
	const files, size = 40, 256 << 10
	payload := func(i int) []byte {
		return bytes.Repeat([]byte{byte('a' + i%26)}, size)
	}
	done := make(chan struct{})
	var seen, partial int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			ents, _ := os.ReadDir(out)
			for _, e := range ents {
				b, err := os.ReadFile(filepath.Join(out, e.Name()))
				if err != nil {
					continue
				}
				seen++
				if len(b) != size {
					partial++
				}
			}
		}
	})
	for i := range files {
		if _, err := Place(out, tmp, fmt.Sprintf("f%03d", i), payload(i), time.Time{}); err != nil {
			t.Error(err)
		}
	}
	close(done)
	wg.Wait()
	if partial > 0 {
		t.Errorf("reader saw %d partial files out of %d reads", partial, seen)
	}
	if seen == 0 {
		t.Log("reader never caught a file; the inotify test still checks atomicity")
	}
	if n := dirNames(t, out); len(n) != files {
		t.Errorf("%d files placed, want %d", len(n), files)
	}
}

func TestUniqueName(t *testing.T) {
	const goroutines, calls = 8, 1000
	names := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range calls {
				names[g] = append(names[g], UniqueName("voice"))
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, goroutines*calls)
	for _, ns := range names {
		for _, n := range ns {
			if seen[n] {
				t.Fatalf("duplicate name %q", n)
			}
			seen[n] = true
			if err := checkName(n); err != nil {
				t.Fatalf("UniqueName gave an unplaceable name: %v", err)
			}
			if !strings.HasPrefix(n, "voice-") {
				t.Fatalf("name %q lacks the prefix", n)
			}
		}
	}
	if n := UniqueName(""); strings.HasPrefix(n, "-") || checkName(n) != nil {
		t.Errorf("UniqueName(\"\") = %q", n)
	}
}

// A temporary file made ahead is the one placed (its inode, not a copy), with
// the call's content; a bad name or a discard removes it; nothing stays in tmp.
func TestPlaceAllTemp(t *testing.T) {
	for _, durable := range []bool{true, false} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			out, tmp := spoolDirs(t)
			data := []byte("Channel: Local/1@x\nApplication: A\n")
			var ts []*Temp
			for range 3 {
				tf, err := NewTemp(tmp)
				if err != nil {
					t.Fatal(err)
				}
				ts = append(ts, tf)
			}
			made, err := os.Stat(ts[0].f.Name())
			if err != nil {
				t.Fatal(err)
			}
			ts[2].Discard()
			ts[2].Discard() // twice is harmless
			var none *Temp
			none.Discard()
			calls := []Call{{Name: "a.call", Data: data, Temp: ts[0]}, {Name: "../b", Data: data, Temp: ts[1]}}
			if err := PlaceAll(out, tmp, calls, durable); err != nil {
				t.Fatalf("PlaceAll: %v", err)
			}
			if calls[0].Err != nil || calls[1].Err == nil {
				t.Fatalf("errors = %v, %v; want nil, a bad name", calls[0].Err, calls[1].Err)
			}
			placed, err := os.Stat(calls[0].Path)
			if err != nil {
				t.Fatal(err)
			}
			if !os.SameFile(made, placed) {
				t.Error("the placed file is not the one made ahead")
			}
			if got, _ := os.ReadFile(calls[0].Path); !bytes.Equal(got, data) || placed.Mode().Perm() != 0o660 {
				t.Errorf("placed %q mode %v; want %q mode 0660", got, placed.Mode().Perm(), data)
			}
			if n := dirNames(t, tmp); len(n) != 0 {
				t.Errorf("temporary files left behind: %q", n)
			}
		})
	}
}
