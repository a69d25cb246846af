package maildir

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

// crashAfter writes a redo list for plan as Commit does, performs the
// first k unlinks (noting them), and stops as a crash would.
func crashAfter(t *testing.T, f *fixture, mb *maildir, deleted []int, k int) {
	t.Helper()
	var plan []planned
	for _, i := range deleted {
		msg := mb.msgs[i]
		plan = append(plan, planned{dir: msg.dir, name: msg.name, base: msg.base, disk: msg.disk})
	}
	sdir, err := statedir.Open(f.stateDir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sdir.Close()
	name, _ := mb.redoName()
	redo, err := writePlan(sdir, name, plan)
	if err != nil {
		t.Fatal(err)
	}
	defer redo.Close()
	for i := range plan[:k] {
		if !mb.unlink(plan[i].dir, plan[i].name) {
			t.Fatalf("unlink %s", plan[i].name)
		}
		noteUnlink(redo, i)
	}
}

// TestRedo: an UPDATE interrupted after any number of unlinks is finished
// by the next open, exactly: the deleted messages go, even one another
// reader moved meanwhile; every other message, and mail delivered after
// the crash, stays; maildirsize gets one line for the whole deletion.
func TestRedo(t *testing.T) {
	for k := 0; k <= 3; k++ {
		t.Run(strconv.Itoa(k), func(t *testing.T) {
			f := newFixture(t)
			for i := range 5 {
				f.put("cur", fmt.Sprintf("170000000%d.m.host:2,", i), lfMsg)
			}
			os.WriteFile(filepath.Join(f.root, "maildirsize"), []byte("0S,0C\n"), 0o600)
			s := f.store(nil)
			mb := f.open(s)
			crashAfter(t, f, mb, []int{0, 2, 4}, k)
			mb.Close() // the crash: no Commit
			os.Rename(filepath.Join(f.root, "cur", "1700000004.m.host:2,"), filepath.Join(f.root, "cur", "1700000004.m.host:2,S"))
			f.put("new", "1800000000.late.host", lfMsg)
			mb = f.open(s)
			defer mb.Close()
			var uids []string
			for _, m := range mb.Messages() {
				uids = append(uids, m.UID)
			}
			if want := []string{"1700000001.m.host", "1700000003.m.host", "1800000000.late.host"}; !slices.Equal(uids, want) {
				t.Errorf("after recovery %v, want %v", uids, want)
			}
			q, _ := os.ReadFile(filepath.Join(f.root, "maildirsize"))
			if want := fmt.Sprintf("0S,0C\n-%d -3\n", 3*len(lfMsg)); string(q) != want {
				t.Errorf("maildirsize %q, want %q", q, want)
			}
			if !strings.Contains(f.logs.String(), "completed an interrupted UPDATE") {
				t.Errorf("recovery not logged: %s", f.logs)
			}
		})
	}
}

// TestRedoTornOrForeign: a redo list torn before its end was never acted
// on and deletes nothing; one another account could have written is set
// aside, never applied.
func TestRedoTornOrForeign(t *testing.T) {
	for _, tc := range []string{"torn", "foreign"} {
		t.Run(tc, func(t *testing.T) {
			f := newFixture(t)
			for i := range 3 {
				f.put("cur", fmt.Sprintf("170000000%d.m.host:2,", i), lfMsg)
			}
			s := f.store(nil)
			mb := f.open(s)
			crashAfter(t, f, mb, []int{0, 1}, 0)
			mb.Close()
			name, _ := mb.redoName()
			p := filepath.Join(f.stateDir, name)
			if tc == "torn" {
				b, _ := os.ReadFile(p)
				os.WriteFile(p, b[:len(b)-5], 0o600)
			} else {
				os.Chmod(p, 0o666)
			}
			mb = f.open(s)
			defer mb.Close()
			if n := len(mb.Messages()); n != 3 {
				t.Errorf("%d messages, want all 3 kept", n)
			}
			if _, err := os.Stat(p); err == nil {
				t.Error("redo list left in place")
			}
			_, err := os.Stat(p + ".bad")
			if (tc == "foreign") != (err == nil) {
				t.Errorf("set aside as .bad: %v", err)
			}
		})
	}
}

// TestParsePlan: the redo list's codec round-trips odd names.
func TestParsePlan(t *testing.T) {
	plan := []planned{{dir: 0, name: "1.a b\"c\\d:2,S", disk: 7}, {dir: 1, name: "2.\xff\n", disk: 0}}
	f := newFixture(t)
	sdir, err := statedir.Open(f.stateDir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sdir.Close()
	redo, err := writePlan(sdir, "x", plan)
	if err != nil {
		t.Fatal(err)
	}
	noteUnlink(redo, 1)
	redo.Close()
	got, quota, err := readPlan(sdir, "x")
	if err != nil || quota || len(got) != 2 || got[0].name != plan[0].name || got[1].name != plan[1].name ||
		got[0].done || !got[1].done || got[0].disk != 7 || got[0].base != "1.a b\"c\\d" {
		t.Errorf("read back %+v quota %v err %v", got, quota, err)
	}
}

// killHelper is set in the environment of the process TestKilledUpdate
// kills: it names the fixture's directory.
const killHelper = "POPA3D_MAILDIR_KILL_HELPER"

// TestKilledUpdate: a session process killed (SIGKILL) at random instants of
// a large UPDATE; the next open finishes the deletions exactly.
func TestKilledUpdate(t *testing.T) {
	if dir := os.Getenv(killHelper); dir != "" {
		killedUpdateHelper(dir)
		return
	}
	const msgs, maxRounds = 1500, 12
	killedMid, rounds := 0, 0
	for round := 0; round < maxRounds && (killedMid < 3 || round < 4); round++ {
		rounds++
		dir := t.TempDir()
		f := &fixture{t: t, root: filepath.Join(dir, "Maildir"), lockDir: filepath.Join(dir, "locks"), stateDir: filepath.Join(dir, "state"), logs: &bytes.Buffer{}}
		for _, d := range []string{"new", "cur", "tmp"} {
			os.MkdirAll(filepath.Join(f.root, d), 0o700)
		}
		for i := range msgs {
			f.put("cur", fmt.Sprintf("17%08d.m.host:2,", i), lfMsg)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledUpdate$")
		cmd.Env = append(os.Environ(), killHelper+"="+dir)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(out)
		line, _ := rd.ReadString('\n')
		if line != "commit\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper said %q", line)
		}
		time.Sleep(time.Duration(rand.IntN(30000)) * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()
		left := len(f.names("cur"))
		if left > msgs/2 && left < msgs {
			killedMid++
		}
		s := f.store(nil)
		mb := f.open(s)
		got := mb.Messages()
		// Odd messages are kept; the even ones were deleted, or, if the
		// kill came before the redo list was durable, all are there.
		if len(got) != msgs/2 && len(got) != msgs {
			t.Errorf("round %d: %d messages after recovery (%d in cur/ after the kill), want %d or %d", round, len(got), left, msgs/2, msgs)
		}
		if len(got) == msgs/2 {
			for i, m := range got {
				if want := fmt.Sprintf("17%08d.m.host", 2*i+1); m.UID != want {
					t.Fatalf("round %d: message %d is %s, want %s", round, i+1, m.UID, want)
				}
			}
		}
		mb.Close()
	}
	t.Logf("%d of %d rounds killed in the middle of the unlinks", killedMid, rounds)
	if killedMid == 0 {
		t.Error("no round killed the UPDATE midway: the test proves nothing")
	}
}

func killedUpdateHelper(dir string) {
	root := filepath.Join(dir, "Maildir")
	s, err := NewStore(Options{LockDir: filepath.Join(dir, "locks"), StateDir: filepath.Join(dir, "state"), Scheme: SchemeFilename})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	mb, err := s.Open(context.Background(), root)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	var del []int
	for i := 0; i < len(mb.Messages()); i += 2 {
		del = append(del, i)
	}
	fmt.Println("commit")
	if err := mb.Commit(context.Background(), del); err != nil {
		os.Exit(1)
	}
	mb.Close()
	os.Exit(0)
}
