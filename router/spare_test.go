package router

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A running serve's spare staging folder is the next batch's, is not counted as
// a staged batch, goes with Close, and when a dead process left one, recovery
// discards it without asking the journal (which may be down).
func TestSpareStagingFolder(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), func(c *Config) { c.Sync = true })
	rg.set("5551001", 'S', "PJSIP/5551001")
	stage := filepath.Join(rg.spool, "smsrouter", "stage")
	staged := func() []string {
		t.Helper()
		entries, err := os.ReadDir(stage)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	r := rg.r
	r.makeSpareStage()
	if r.spare == nil {
		t.Fatal("no spare made")
	}
	spare := filepath.Base(r.spare.dir)
	if got := staged(); len(got) != 1 || got[0] != spare {
		t.Fatalf("stage holds %v, want the spare %s", got, spare)
	}
	if s, err := rg.admin().Stats(); err != nil || s.Staged != 0 {
		t.Fatalf("stats %+v, %v: the spare counted as a staged batch", s, err)
	}

	rg.morx("5550001.2026-01-01T00:00:00-1", "oa=5550001\nda=5551001\nud=hello\n")
	if sum := rg.drain(); len(sum.Outcomes) != 1 || sum.Outcomes[0].State != StateDelivered {
		t.Fatalf("outcomes %+v", sum.Outcomes)
	}
	if r.spare != nil || r.owner+"."+strconv.Itoa(r.batchSeq) != spare {
		t.Fatalf("the batch (number %d) did not take the spare %s", r.batchSeq, spare)
	}
	if got := staged(); len(got) != 0 {
		t.Fatalf("stage holds %v after the batch", got)
	}

	r.makeSpareStage()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := staged(); len(got) != 0 {
		t.Fatalf("Close left %v", got)
	}

	dead := filepath.Join(stage, "vm-1-dead.7")
	if err := os.MkdirAll(dead, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, manifestName), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	rg.store.Close() // the journal cannot answer
	if err := r.settleStage(context.Background(), dead); err != nil {
		t.Fatalf("settle a dead process's spare: %v", err)
	}
	if got := staged(); len(got) != 0 {
		t.Fatalf("a dead process's spare was left: %v", got)
	}
	if !strings.HasPrefix(spare, r.owner+".") {
		t.Fatalf("spare %s is not named after its owner %s", spare, r.owner)
	}
}

// A batch with nothing to record (here a part held for its siblings) takes the
// spare and leaves neither its folder nor an open file behind.
func TestSpareTakenByABatchWithNothingToStage(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), func(c *Config) { c.Sync = true })
	rg.set("5551001", 'S', "PJSIP/5551001")
	r := rg.r
	r.makeSpareStage()
	if r.spare == nil {
		t.Fatal("no spare made")
	}
	manifest := filepath.Join(r.spare.dir, manifestName)
	// Part 1 of 2: held until its sibling comes.
	rg.morx("p.1", "oa=5550001\nda=5551001\nudh#0003A70201\nud=hello\n")
	if sum := rg.drain(); sum.Counts[StateHeld] != 1 {
		t.Fatalf("the part must wait for its sibling: %+v", sum.Counts)
	}
	if r.spare != nil {
		t.Fatal("the batch did not take the spare")
	}
	if _, err := os.Stat(filepath.Dir(manifest)); !os.IsNotExist(err) {
		t.Fatalf("spare folder left: %v", err)
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); strings.HasPrefix(target, manifest) {
			t.Fatalf("the spare's manifest is still open: fd %s -> %s", fd.Name(), target)
		}
	}
}
