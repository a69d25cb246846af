package mbox

import (
	"bufio"
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
)

// killCommitEnv makes the test binary a session that commits deletions and is
// killed by its parent (TestJournalKill). Its value is
// "path lockDir stateDir interval pause deleted,...".
const killCommitEnv = "MBOX_TEST_KILL_COMMIT"

// slowIO is the real I/O with a pause after each interval, so that a kill
// lands in the middle of an UPDATE more often.
type slowIO struct {
	osIO
	pause time.Duration
}

func (s slowIO) interval() { time.Sleep(s.pause) }

// commitToBeKilled opens the mailbox, says "ready", commits the deletions and
// says "done".
func commitToBeKilled(args string) int {
	f := strings.Fields(args)
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	if len(f) != 6 {
		return fail(fmt.Errorf("%s: want 6 fields, got %q", killCommitEnv, args))
	}
	interval, _ := strconv.ParseInt(f[3], 10, 64)
	pause, _ := time.ParseDuration(f[4])
	var deleted []int
	for _, d := range strings.Split(f[5], ",") {
		i, err := strconv.Atoi(d)
		if err != nil {
			return fail(err)
		}
		deleted = append(deleted, i)
	}
	s := journalStore(f[1], f[2], slowIO{pause: pause}, interval)
	m, err := s.Open(context.Background(), f[0])
	if err != nil {
		return fail(err)
	}
	fmt.Println("ready")
	if err := m.Commit(context.Background(), deleted); err != nil {
		return fail(err)
	}
	fmt.Println("done")
	return 0
}

// killedCommit runs a session in a child process that commits deleted, and
// kills it with SIGKILL after delay from its "ready" (never if negative). It
// returns how long the commit took if the child finished first.
func killedCommit(t *testing.T, path, lockDir, stateDir string, deleted []int, delay time.Duration) (finished time.Duration) {
	t.Helper()
	ds := make([]string, len(deleted))
	for i, d := range deleted {
		ds[i] = strconv.Itoa(d)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %d %s %s", killCommitEnv,
		path, lockDir, stateDir, 16<<10, time.Millisecond, strings.Join(ds, ",")))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q, %v", lines.Text(), lines.Err())
	}
	start := time.Now()
	doneC := make(chan bool, 1)
	go func() { doneC <- lines.Scan() && lines.Text() == "done" }()
	if delay >= 0 {
		time.Sleep(delay)
		cmd.Process.Kill()
	}
	ok := <-doneC
	finished = time.Since(start)
	cmd.Wait()
	if !ok {
		return -1
	}
	return finished
}

// TestJournalKill kills a session process with SIGKILL at random instants of
// its UPDATE, sometimes delivers mail before the next session, and checks that
// the next Open gives exactly the kept messages and the new mail.
func TestJournalKill(t *testing.T) {
	runs := 200
	if testing.Short() {
		runs = 20
	}
	rng := rand.New(rand.NewPCG(11, 12))
	content := genMailbox(rng, 400, 200, 3000, "k")
	dir := t.TempDir()
	path, lockDir, stateDir := filepath.Join(dir, "mbox"), filepath.Join(dir, "locks"), filepath.Join(dir, "state")

	// Deletion sets: sparse (small gaps: many intervals with saved copies),
	// middling, dense.
	deletions := func(p float64) []int {
		var d []int
		for i := range 400 {
			if rng.Float64() < p {
				d = append(d, i)
			}
		}
		if len(d) == 0 {
			d = []int{rng.IntN(400)}
		}
		return d
	}
	probs := []float64{0.01, 0.3, 0.8}
	// Calibrate: how long an uninterrupted commit of each kind takes here.
	var took []time.Duration
	for _, p := range probs {
		writeWithMtime(t, path, content, pastTime)
		d := killedCommit(t, path, lockDir, stateDir, deletions(p), -1)
		if d < 0 {
			t.Fatal("an uninterrupted commit failed")
		}
		took = append(took, d)
	}
	var journals, complete, original, newMail int
	for run := range runs {
		k := run % len(probs)
		deleted := deletions(probs[k])
		writeWithMtime(t, path, content, pastTime)
		delay := time.Duration(rng.Int64N(int64(took[k]) * 11 / 10))
		killedCommit(t, path, lockDir, stateDir, deleted, delay)
		if ents, _ := filepath.Glob(filepath.Join(stateDir, "*.journal")); len(ents) > 0 {
			journals++
		}
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var after []byte
		if rng.IntN(3) == 0 {
			after = genMailbox(rng, 1+rng.IntN(3), 100, 20000, fmt.Sprintf("new%d", run))
			appendFile(t, path, after)
			newMail++
		}
		wants := [][]byte{slices.Concat(keptOf(t, content, deleted), after)}
		if slices.Equal(before, content) {
			wants = append(wants, slices.Concat(content, after))
		}
		var match int
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			match = checkMailbox(t, journalStore(lockDir, stateDir, nil, 0), path, wants...)
		})
		if t.Failed() {
			t.Fatalf("run %d: killed %v into a commit of %d deletions", run, delay, len(deleted))
		}
		if match == 0 {
			complete++
		} else {
			original++
		}
	}
	t.Logf("%d kills (commits took %v uninterrupted): %d left a journal, %d ended with the kept messages, %d with all, %d got new mail",
		runs, took, journals, complete, original, newMail)
	if journals == 0 {
		t.Error("no kill interrupted an UPDATE")
	}
}
