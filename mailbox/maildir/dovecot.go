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
	builtinDovecot = func(log *slog.Logger) stampedAssigner { return dovecotStamped(uidlist.Options{Recheck: true}, log) }
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
		as, st, err := uidlist.SyncStamped(ctx, dir, entries, opts)
		stamp := &st
		var corrupt *uidlist.CorruptError
		if errors.As(err, &corrupt) {
			log.Warn(fmt.Sprintf("Maildir %s: %v: serving the %d messages it lists before the damage, no others, until it is mended", dir, err, len(as)))
			stamp = nil
		} else if err != nil {
			return nil, nil, err
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
