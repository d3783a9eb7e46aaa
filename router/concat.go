package router

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"smsrouter/asteriskconf/smsq"
)

// Concatenated messages arrive as separate spool files, one per part, in any order.
// Each part waits in parts/ under a name that says which message it belongs to:
//
//	<oa>_<da>_<ref>_<total>.<seq>.<id>.<attempts>
//
// When every part is there they are claimed together and joined into one message
// that carries the id of part 1; when the oldest has waited ConcatTimeout they are
// routed one by one as they are.

// asmPrefix marks parts claimed for joining: asm~<joined id>~<part file name>.
const asmPrefix = "asm~"

type partFile struct {
	name  string
	seq   int
	claim claimName
}

type partGroup struct {
	key    string
	total  int
	parts  []partFile
	oldest time.Time
}

func partKey(m *smsq.Message) (string, int, int, bool) {
	ref, total, seq, ok := m.Concat()
	if !ok || total < 2 || seq < 1 || seq > total {
		return "", 0, 0, false
	}
	return fmt.Sprintf("%s_%s_%d_%d", m.OA, m.DA, ref, total), int(total), int(seq), true
}

func parsePartName(name string) (key string, seq int, c claimName, ok bool) {
	f := strings.SplitN(name, ".", 3)
	if len(f) != 3 {
		return "", 0, claimName{}, false
	}
	seq, err := strconv.Atoi(f[1])
	if err != nil || seq < 1 {
		return "", 0, claimName{}, false
	}
	c, ok = parseClaimName(f[2])
	return f[0], seq, c, ok && !c.solo
}

// hold parks a part until its siblings arrive.
func (r *Router) hold(j *job) {
	key, _, seq, ok := partKey(j.msg)
	if !ok {
		// A UDH that claims to be a part but makes no sense: route it on its own.
		return
	}
	dst := filepath.Join(r.l.parts, fmt.Sprintf("%s.%d.%s", key, seq, j.claim))
	if err := renameNoReplace(j.path, dst); err != nil {
		r.log.Error("cannot hold part; routing it alone", "id", j.claim.id, "err", err)
		return
	}
	j.state, j.settled = StateHeld, true
	r.log.Info("part held", "id", j.claim.id, "group", key, "seq", seq)
}

func (r *Router) scanParts() (map[string]*partGroup, error) {
	entries, err := os.ReadDir(r.l.parts)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.l.parts, err)
	}
	groups := map[string]*partGroup{}
	for _, e := range entries {
		key, seq, c, ok := parsePartName(e.Name())
		if !ok {
			continue
		}
		k := strings.Split(key, "_")
		total, err := strconv.Atoi(k[len(k)-1])
		if err != nil || seq > total {
			continue
		}
		g := groups[key]
		if g == nil {
			g = &partGroup{key: key, total: total}
			groups[key] = g
		}
		g.parts = append(g.parts, partFile{name: e.Name(), seq: seq, claim: c})
		if t, ok := idTime(c.id); ok && (g.oldest.IsZero() || t.Before(g.oldest)) {
			g.oldest = t
		}
	}
	return groups, nil
}

// claimParts joins complete groups and releases timed-out ones.
func (r *Router) claimParts(limit int) ([]*item, error) {
	groups, err := r.scanParts()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	now := r.now()
	var items []*item
	for _, k := range keys {
		if len(items) >= limit {
			break
		}
		g := groups[k]
		sort.Slice(g.parts, func(i, j int) bool { return g.parts[i].name < g.parts[j].name })
		bySeq := map[int]partFile{}
		for _, p := range g.parts {
			if _, dup := bySeq[p.seq]; !dup {
				bySeq[p.seq] = p
			}
		}
		switch {
		case len(bySeq) == g.total:
			if it := r.join(g, bySeq); it != nil {
				items = append(items, it)
			}
		case !now.Before(g.oldest.Add(r.cfg.ConcatTimeout)):
			for _, p := range g.parts {
				c := p.claim
				c.solo = true
				if it := r.take(filepath.Join(r.l.parts, p.name), p.name, c, true); it != nil {
					items = append(items, it)
				}
			}
			r.log.Warn("concatenation timed out; parts routed as they are", "group", k, "have", len(bySeq), "total", g.total)
		}
	}
	return items, nil
}

// join claims all parts of a complete group and writes them as one message.
func (r *Router) join(g *partGroup, bySeq map[int]partFile) *item {
	first := bySeq[1].claim
	var taken []partFile
	giveBack := func() {
		for _, p := range taken {
			_ = renameNoReplace(filepath.Join(r.myClaim, asmPrefix+first.id+"~"+p.name), filepath.Join(r.l.parts, p.name))
		}
	}
	for seq := 1; seq <= g.total; seq++ {
		p := bySeq[seq]
		if err := renameNoReplace(filepath.Join(r.l.parts, p.name), filepath.Join(r.myClaim, asmPrefix+first.id+"~"+p.name)); err != nil {
			giveBack() // another process is joining them
			return nil
		}
		taken = append(taken, p)
	}
	var joined *smsq.Message
	var text strings.Builder
	attempts := 0
	for _, p := range taken {
		data, _, err := readCapped(filepath.Join(r.myClaim, asmPrefix+first.id+"~"+p.name), maxSpoolFile)
		var m *smsq.Message
		if err == nil {
			m, err = smsq.Parse(data, r.cfg.Location)
		}
		if err != nil {
			r.log.Error("part unreadable at join; parts left for an admin", "group", g.key, "err", err)
			giveBack()
			return nil
		}
		if joined == nil {
			joined = m
		}
		text.WriteString(m.Text)
		attempts = max(attempts, p.claim.attempts)
	}
	joined.Text = text.String()
	joined.UDH, joined.HasUDH = nil, false
	joined.DCS, joined.MR = -1, -1
	data, err := joined.Marshal()
	if err != nil {
		r.log.Error("cannot write joined message", "group", g.key, "err", err)
		giveBack()
		return nil
	}
	c := claimName{id: first.id, attempts: attempts}
	tmp := filepath.Join(r.myClaim, ".join-"+first.id)
	dst := filepath.Join(r.myClaim, c.String())
	if err := writeNew(tmp, data, 0o640, r.cfg.Sync); err != nil {
		os.Remove(tmp)
		giveBack()
		r.log.Error("cannot write joined message", "group", g.key, "err", err)
		return nil
	}
	if err := renameNoReplace(tmp, dst); err != nil {
		os.Remove(tmp)
		giveBack()
		r.log.Error("cannot write joined message", "group", g.key, "err", err)
		return nil
	}
	// The joined file is in place: the parts are now redundant.
	for _, p := range taken {
		os.Remove(filepath.Join(r.myClaim, asmPrefix+first.id+"~"+p.name))
	}
	r.log.Info("concatenated message joined", "id", first.id, "parts", g.total, "group", g.key)
	var others []string
	for _, p := range taken[1:] {
		others = append(others, p.claim.id)
	}
	return &item{claim: c, path: dst, source: fmt.Sprintf("%d parts %s", g.total, g.key), resumed: true, parts: others}
}

// recoverAssembling deals with a part a dead process was joining: if the joined
// message was written, the part is redundant; otherwise it goes back to wait.
func (r *Router) recoverAssembling(src, name string, claimed map[string]bool) {
	rest := strings.TrimPrefix(name, asmPrefix)
	joinedID, partName, ok := strings.Cut(rest, "~")
	if !ok {
		r.quarantine(src, name, "unexpected file in a claim folder")
		return
	}
	if claimed[joinedID] {
		os.Remove(src)
		return
	}
	if err := renameNoReplace(src, filepath.Join(r.l.parts, partName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Error("cannot return part", "file", src, "err", err)
	}
}
