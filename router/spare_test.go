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
