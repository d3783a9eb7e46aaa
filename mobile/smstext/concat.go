package smstext

import (
	"sort"
	"sync"
	"time"
)

// Concat places one part in a concatenated message (TS 23.040 9.2.3.24.1
// and .8). The zero value means a message that stands alone.
type Concat struct {
	Ref   uint16 // the sender's reference, 8 or 16 bits
	Total int    // parts in the message, 1..255
	Seq   int    // this part, 1..Total
}

// Valid reports whether c names a part of a message of two or more parts.
// Headers saying "part 0 of 3" or "part 4 of 3" exist in the wild: such a
// part is best treated as a message of its own.
func (c Concat) Valid() bool { return c.Total >= 2 && c.Seq >= 1 && c.Seq <= c.Total }

// ConcatFromUDH reads the concatenation element of a user data header given
// with its length octet first (as it starts SMPP's short_message or a TPDU's
// user data). The last concatenation element wins, as in TS 23.040. ok is
// false when there is none or the header is malformed; n is the header's
// length including the length octet (0 when malformed), so data[n:] is the
// text.
func ConcatFromUDH(udh []byte) (c Concat, n int, ok bool) {
	if len(udh) == 0 {
		return Concat{}, 0, false
	}
	l := int(udh[0])
	if l+1 > len(udh) {
		return Concat{}, 0, false
	}
	ies := udh[1 : l+1]
	for len(ies) > 0 {
		if len(ies) < 2 || int(ies[1])+2 > len(ies) {
			return Concat{}, 0, false
		}
		id, d := ies[0], ies[2:2+int(ies[1])]
		switch {
		case id == 0x00 && len(d) == 3:
			c, ok = Concat{Ref: uint16(d[0]), Total: int(d[1]), Seq: int(d[2])}, true
		case id == 0x08 && len(d) == 4:
			c, ok = Concat{Ref: uint16(d[0])<<8 | uint16(d[1]), Total: int(d[2]), Seq: int(d[3])}, true
		}
		ies = ies[2+int(ies[1]):]
	}
	return c, l + 1, ok && c.Valid()
}

// Key names one concatenated message: the same reference from another
// sender, to another recipient or with another part count is another
// message.
type Key struct {
	From, To string
	Ref      uint16
	Total    int
}

// Reassembler collects the parts of concatenated messages until each is
// whole. It holds whatever the caller wants per part (a received part with
// its acknowledgement, a storage index) so the caller can settle every part
// once the whole message is safely stored. It is safe for concurrent use.
//
// It keeps parts in memory only. Both links keep a part unacknowledged at the
// network until the caller settles it, so after a crash the parts come again
// and are joined again.
type Reassembler[T any] struct {
	mu     sync.Mutex
	groups map[Key]*group[T]
}

type group[T any] struct {
	first time.Time
	parts map[int]T
}

// Add files the part seq of the message k, received at now. When it completes
// the message, Add returns all parts in order and forgets them. When a part
// with the same seq was already held (the network delivered it again), the
// newer one replaces it and the older is returned as superseded: for a link
// where the newer copy is itself unacknowledged (SMPP), the older can be
// settled at once, because the newer will be redelivered after a crash.
//
// A seq outside 1..k.Total cannot be placed: Add returns that part alone as
// whole, to be treated as a message of its own.
func (r *Reassembler[T]) Add(k Key, seq int, part T, now time.Time) (whole []T, superseded T, hadOlder bool) {
	if seq < 1 || seq > k.Total {
		return []T{part}, superseded, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.groups == nil {
		r.groups = make(map[Key]*group[T])
	}
	g := r.groups[k]
	if g == nil {
		g = &group[T]{first: now, parts: make(map[int]T, k.Total)}
		r.groups[k] = g
	}
	superseded, hadOlder = g.parts[seq]
	g.parts[seq] = part
	if len(g.parts) < k.Total {
		return nil, superseded, hadOlder
	}
	delete(r.groups, k)
	return ordered(g), superseded, hadOlder
}

// Expire removes and returns, each in part order, the incomplete messages
// whose first part arrived at or before deadline: the caller routes such
// parts as they are rather than hold them for ever.
func (r *Reassembler[T]) Expire(deadline time.Time) []Incomplete[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Incomplete[T]
	for k, g := range r.groups {
		if !g.first.After(deadline) {
			out = append(out, Incomplete[T]{Key: k, First: g.first, Parts: ordered(g)})
			delete(r.groups, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].First.Before(out[j].First) })
	return out
}

// Incomplete is a message whose parts did not all arrive in time.
type Incomplete[T any] struct {
	Key   Key
	First time.Time
	Parts []T // the parts that came, in part order
}

// Pending reports how many messages are waiting for parts.
func (r *Reassembler[T]) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.groups)
}

func ordered[T any](g *group[T]) []T {
	seqs := make([]int, 0, len(g.parts))
	for s := range g.parts {
		seqs = append(seqs, s)
	}
	sort.Ints(seqs)
	out := make([]T, len(seqs))
	for i, s := range seqs {
		out[i] = g.parts[s]
	}
	return out
}
