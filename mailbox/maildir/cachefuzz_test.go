package maildir

import (
	"bytes"
	"testing"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/cachefile"
)

// FuzzDecodeCache: any index cache body (in a well-formed container, so
// that the checksum passes) decodes without a panic, and what decodes is
// within the checks: at most max_messages entries, each in new/ or cur/
// with a name, a size as sent possible for its size on disk, and a base
// that is the name up to ":2,".
func FuzzDecodeCache(f *testing.F) {
	// A real body: the cache of a small Maildir written by writeCache.
	m := &maildir{store: &Store{lim: mailbox.Limits{MaxMessages: 1000}.WithDefaults(), scheme: snapDovecot}, abs: "/m"}
	m.msgs = []message{
		{dir: dirNew, name: "1700000000.M1P1.host", base: "1700000000.M1P1.host", size: 66, disk: 64, time: 1700000000, uidl: "000000016b139461"},
		{dir: dirCur, name: "1700000001.M2P1.host,S=5,W=6:2,S", base: "1700000001.M2P1.host,S=5,W=6", size: 6, disk: 5, time: -3, uidl: "x"},
	}
	m.stamp.valid = true
	m.stamp.dirs[1] = dirStamp{dev: 1, ino: 2, size: 4096, mtime: 1700000000123456789}
	var file bytes.Buffer
	w := cachefile.NewWriter(&file, cacheFormat, cacheChunk)
	m.encodeCache(w)
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	head := len(cacheFormat.Magic) + 4
	f.Add(file.Bytes()[head : file.Len()-cachefile.SumLen])
	f.Add([]byte{})
	f.Add([]byte{2, '/', 'm', 0, 0, 0, 0, 1, 2, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		var file bytes.Buffer
		w := cachefile.NewWriter(&file, cacheFormat, cacheChunk)
		w.Write(body)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var c *cacheData
		err := cachefile.Decode(bytes.NewReader(file.Bytes()), int64(file.Len()), cacheFormat, cacheChunk, func(rd *cachefile.Reader) (err error) {
			c, err = m.decodeCache(rd)
			return err
		})
		if err != nil {
			return
		}
		if len(c.ents) > m.store.lim.MaxMessages {
			t.Fatalf("%d entries", len(c.ents))
		}
		for _, e := range c.ents {
			if e.dir > dirCur || e.name == "" || e.size < e.disk || e.size > 2*e.disk+2 || e.base != parseName(e.name).base {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}
