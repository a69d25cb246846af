package mbox

import (
	"os"
	"strings"
	"testing"
)

// TestIndexCacheStaleCost pins that a cache which no longer fits its mailbox
// costs no more than a fresh parse: for every way another program rewrites
// the mailbox, the open decodes no entry of the cache and reads no more of
// the mailbox than a full parse of the rewritten file does, plus the spot
// checks of the sampled messages. A cache of a prefix (mail appended since)
// reads only the appended part and the samples.
func TestIndexCacheStaleCost(t *testing.T) {
	const n = 400
	orig := testMailbox(n)
	msgs := splitMessages(t, orig)
	// withStatus returns orig with "Status: RO" added to the header of
	// messages from..n-1, as mutt writes it back after they were read.
	withStatus := func(from int) string {
		var b strings.Builder
		for i, msg := range msgs {
			if i >= from {
				msg = strings.Replace(msg, "\nSubject: ", "\nStatus: RO\nSubject: ", 1)
			}
			b.WriteString(msg)
		}
		return b.String()
	}
	inPlace := func(content string) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil { // same inode
				t.Fatal(err)
			}
		}
	}
	replace := func(content string) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			tmp := path + ".new"
			if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		rewrite func(t *testing.T, path string)
	}{
		{"replaced by a copy", replace(orig)},
		{"replaced, Status added to every message", replace(withStatus(0))},
		{"in place, Status added to every message", inPlace(withStatus(0))},
		{"in place, Status added from the middle on", inPlace(withStatus(n / 2))},
		{"in place, Status added to the last but one", inPlace(withStatus(n - 2))},
		{"in place, two messages swapped", inPlace(swapMessages(t, orig, n/2, n/2+1))},
		{"in place, the first message deleted", inPlace(strings.Join(msgs[1:], ""))},
		{"in place, the last message deleted", inPlace(strings.Join(msgs[:n-1], ""))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCacheEnv(t, Options{})
			path := install(t, []byte(orig))
			env.open(t, path, indexedFull).Close()
			tc.rewrite(t, path)
			stale := env.open(t, path, indexedFull)
			stale.Close()
			if errs := env.takeErrs(); len(errs) > 0 {
				t.Errorf("cache errors %v", errs)
			}
			if stale.cacheEntries != 0 {
				t.Errorf("decoded %d entries of a cache that does not fit", stale.cacheEntries)
			}
			fresh := newCacheEnv(t, Options{}).open(t, path, indexedFull)
			if budget := fresh.indexRead + spotBudget(orig); stale.indexRead > budget {
				t.Errorf("read %d bytes of the mailbox, a fresh parse %d, spot checks at most %d more",
					stale.indexRead, fresh.indexRead, budget-fresh.indexRead)
			}
		})
	}

	t.Run("cache of a prefix", func(t *testing.T) {
		env := newCacheEnv(t, Options{})
		head := strings.Join(msgs[:n/4], "")
		path := install(t, []byte(head))
		env.open(t, path, indexedFull).Close()
		appendFile(t, path, []byte(strings.Join(msgs[n/4:], "")))
		m := env.open(t, path, indexedAppend)
		if m.cacheEntries != n/4 {
			t.Errorf("decoded %d entries, want the %d cached", m.cacheEntries, n/4)
		}
		last := int64(len(head) - len(msgs[n/4-1]))
		if budget := int64(len(orig)) - last + spotBudget(head); m.indexRead > budget {
			t.Errorf("read %d bytes of the mailbox, want at most %d: the appended part from the last cached message, and the spot checks", m.indexRead, budget)
		}
	})
}

// spotBudget is the most the spot checks of a cache of content may read:
// each sampled message, the empty line before it and the "From " after it.
func spotBudget(content string) int64 {
	longest := 0
	for _, msg := range strings.SplitAfter(content, "\n\nFrom ") {
		longest = max(longest, len(msg))
	}
	return int64(indexSamples+3) * int64(longest+2+len("From "))
}

// splitMessages returns content's messages, each from its From_ line to
// the next one.
func splitMessages(t *testing.T, content string) []string {
	t.Helper()
	entries, err := Index(strings.NewReader(content), int64(len(content)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]string, len(entries))
	for i, e := range entries {
		msgs[i] = content[e.Offset : e.Offset+e.RawSize]
	}
	return msgs
}

// TestSampleIndices checks the messages the spot checks sample: the first,
// the last but one and the last always, at most indexSamples+3, ascending,
// each once.
func TestSampleIndices(t *testing.T) {
	for _, n := range []int{1, 2, 3, 17, 18, 19, 20, 100, 1000, 100000} {
		idx := sampleIndices(n)
		if len(idx) > indexSamples+3 || idx[0] != 0 || idx[len(idx)-1] != n-1 || (n > 1 && idx[len(idx)-2] != n-2) {
			t.Errorf("n=%d: %v", n, idx)
		}
		for j := 1; j < len(idx); j++ {
			if idx[j] <= idx[j-1] {
				t.Errorf("n=%d: not ascending: %v", n, idx)
			}
		}
		if n >= indexSamples+3 && len(idx) != indexSamples+3 {
			t.Errorf("n=%d: %d samples", n, len(idx))
		}
	}
}
