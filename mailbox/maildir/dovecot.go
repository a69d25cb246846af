package maildir

// The dovecot UIDL scheme: package uidlist keeps dovecot-uidlist as Dovecot
// does; this adapts it to the store.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/popa3d/popa3d/mailbox/maildir/uidlist"
)

func init() {
	builtinDovecot = func(log *slog.Logger) indexedAssigner { return dovecotIndexed(uidlist.Options{Recheck: true}, log) }
}

// dovecotBase is Dovecot's base name of a Maildir file: the name up to the
// first ':' (maildir_info_separator).
func dovecotBase(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// DovecotAssigner returns the dovecot scheme with uidlist's options (zero:
// Dovecot's defaults), logging through log. It numbers messages as Dovecot's POP3 server does: by the
// O (POP3 order) field of migrated mail first, then by UID; UIDLs are the
// P field or %08Xu%08Xv. Of two files of one Dovecot base name (a copy left
// in new/ and cur/), Dovecot serves one: the one in cur/. A corrupt
// dovecot-uidlist is logged; the messages it lists before the damage are
// served with their UIDLs and the rest is left out until it is mended, so
// that no listed message's UIDL ever changes.
func DovecotAssigner(opts uidlist.Options, log *slog.Logger) Assigner {
	a := dovecotStamped(opts, log)
	return func(ctx context.Context, dir string, msgs []Entry) ([]Assigned, error) {
		as, _, err := a(ctx, dir, msgs)
		return as, err
	}
}

// dovecotStamped is DovecotAssigner that also returns the uidlist's Stamp as
// the sync left it (not Exists, and never trusted, after a corrupt one).
func dovecotStamped(opts uidlist.Options, log *slog.Logger) stampedAssigner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, dir string, msgs []Entry) ([]Assigned, *uidlist.Stamp, error) {
		if opts.Logf == nil {
			opts.Logf = func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) }
		}
		// One entry per Dovecot base, the cur/ file preferred.
		ours := make(map[string]string, len(msgs)) // Dovecot base → our base
		var entries []uidlist.Entry
		for _, m := range msgs {
			b := dovecotBase(m.Name)
			if b == "" {
				continue
			}
			if _, dup := ours[b]; dup {
				if !m.New {
					ours[b] = m.Base
				}
				continue
			}
			ours[b] = m.Base
			entries = append(entries, uidlist.Entry{Base: b, Name: m.Name, New: m.New})
		}
		as, stamp, err := syncUIDs(ctx, dir, entries, opts, log)
		if err != nil {
			return nil, nil, err
		}
		out := make([]Assigned, 0, len(as))
		for _, a := range as {
			base, ok := ours[a.Base]
			if !ok {
				return nil, nil, fmt.Errorf("uidlist returned %q, not given", a.Base)
			}
			out = append(out, Assigned{Base: base, UID: a.UID, UIDL: a.UIDL})
		}
		return out, stamp, nil
	}
}

// sortByOrder sorts as, sorted by UID, as Dovecot's POP3 server numbers
// messages: those with an O field (migrated mail) first, by it, then the
// others, by UID. Without O fields there is nothing to move.
func sortByOrder(as []uidlist.Assigned) {
	if !slices.ContainsFunc(as, func(a uidlist.Assigned) bool { return a.Order != 0 }) {
		return
	}
	slices.SortStableFunc(as, func(a, b uidlist.Assigned) int {
		switch {
		case a.Order != 0 && b.Order != 0:
			return int(int64(a.Order) - int64(b.Order))
		case a.Order != 0:
			return -1
		case b.Order != 0:
			return 1
		}
		return 0
	})
}

// dovecotIndexed is dovecotStamped on the store's own messages, with at
// most one map (Dovecot base → uidlist entry) where dovecotStamped and
// applyAssigned build three: it serves the messages dovecotStamped and
// applyAssigned would, in their order.
func dovecotIndexed(opts uidlist.Options, log *slog.Logger) indexedAssigner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, dir string, msgs []message, order []int32) ([]int32, *uidlist.Stamp, error) {
		if opts.Logf == nil {
			opts.Logf = func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) }
		}
		// One entry per Dovecot base, named by its first file; from[k]
		// is the message whose base entry k serves (dovecotStamped's
		// "our base"): that of the last file in cur/, else the first's.
		// While the Dovecot bases ascend (orderByName's order gives
		// them so when the names start with delivery times of as many
		// digits) they are distinct, and an entry is found again where
		// it was expected or by a binary search: byDovecot is nil.
		entries := make([]uidlist.Entry, 0, len(order))
		from := make([]int32, 0, len(order))
		var byDovecot map[string]int32
		dups := false
		for _, i := range order {
			m := &msgs[i]
			b := dovecotBase(m.name)
			if b == "" {
				continue
			}
			if byDovecot == nil && len(entries) > 0 && entries[len(entries)-1].Base >= b {
				byDovecot = make(map[string]int32, len(order))
				for k, e := range entries {
					byDovecot[e.Base] = int32(k)
				}
			}
			if byDovecot != nil {
				if k, dup := byDovecot[b]; dup {
					dups = true
					if m.dir != dirNew {
						from[k] = i
					}
					continue
				}
				byDovecot[b] = int32(len(entries))
			}
			entries = append(entries, uidlist.Entry{Base: b, Name: m.name, New: m.dir == dirNew})
			from = append(from, i)
		}
		if dups {
			// Of the files of that base, the one served is
			// applyAssigned's: the first in cur/, else the last.
			byBase := make(map[string]int32, len(order))
			for _, i := range order {
				if j, dup := byBase[msgs[i].base]; !dup || msgs[j].dir != dirCur {
					byBase[msgs[i].base] = i
				}
			}
			for k, i := range from {
				from[k] = byBase[msgs[i].base]
			}
		}
		as, stamp, err := syncUIDs(ctx, dir, entries, opts, log)
		if err != nil {
			return nil, nil, err
		}
		picks := order[:0] // order is read no more
		used := make([]bool, len(entries))
		next := 0 // where the next entry is expected: after the last
		for _, a := range as {
			k, ok := next, next < len(entries) && entries[next].Base == a.Base
			switch {
			case ok:
			case byDovecot != nil:
				var k32 int32
				k32, ok = byDovecot[a.Base]
				k = int(k32)
			default:
				k, ok = slices.BinarySearchFunc(entries, a.Base, func(e uidlist.Entry, b string) int { return strings.Compare(e.Base, b) })
			}
			next = k + 1
			if !ok {
				return nil, nil, fmt.Errorf("uidlist returned %q, not given", a.Base)
			}
			if used[k] {
				return nil, nil, fmt.Errorf("uidlist returned %q twice", a.Base)
			}
			used[k] = true
			msgs[from[k]].uidl = a.UIDL
			picks = append(picks, from[k])
		}
		return picks, stamp, nil
	}
}

// syncUIDs is uidlist.SyncStamped for both dovecot schemes, the assigned
// entries in Dovecot's POP3 order (sortByOrder). A corrupt dovecot-uidlist
// is logged, not an error: the entries it lists before the damage are
// served, with a nil Stamp (never trusted).
func syncUIDs(ctx context.Context, dir string, entries []uidlist.Entry, opts uidlist.Options, log *slog.Logger) ([]uidlist.Assigned, *uidlist.Stamp, error) {
	as, st, err := uidlist.SyncStamped(ctx, dir, entries, opts)
	stamp := &st
	var corrupt *uidlist.CorruptError
	if errors.As(err, &corrupt) {
		log.Warn(fmt.Sprintf("Maildir %s: %v: serving the %d messages it lists before the damage, no others, until it is mended", dir, err, len(as)))
		stamp = nil
	} else if err != nil {
		return nil, nil, err
	}
	sortByOrder(as)
	return as, stamp, nil
}
