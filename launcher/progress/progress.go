// Package progress reports the advance of long batch work: a live bar with
// rate and ETA on a terminal, and plain periodic lines when the output is a
// log file (Slurm jobs, CI), so logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Reporter shows the progress of one task. Update may be called as often
// as convenient; output is throttled. Safe for concurrent use.
type Reporter struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	unit     string
	total    int
	start    time.Time
	base     int // work already done when the task started (resumed runs)
	bar      *progressbar.ProgressBar
	interval time.Duration
	last     time.Time
	done     int
	note     string
}

// Interval is how often plain-line mode prints; EARL_PROGRESS_INTERVAL
// (a Go duration such as 30s) overrides it.
const Interval = 10 * time.Second

// New returns a Reporter writing to f: a bar when f is a terminal, lines
// otherwise. base is how much of total was done before this run began, so
// the rate and ETA reflect this run only.
func New(f *os.File, label, unit string, total, base int) *Reporter {
	r := &Reporter{w: f, label: label, unit: unit, total: total, base: base, start: time.Now(), interval: Interval}
	if d, err := time.ParseDuration(os.Getenv("EARL_PROGRESS_INTERVAL")); err == nil && d > 0 {
		r.interval = d
	}
	r.last = r.start
	if term.IsTerminal(int(f.Fd())) {
		r.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
		)
		r.bar.Set(base)
	}
	return r
}

// Update records that done of total units are finished; note is extra
// text such as a reject count.
func (r *Reporter) Update(done int, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done, r.note = done, note
	if r.bar != nil {
		if note != "" {
			r.bar.Describe(r.label + " (" + note + ")")
		}
		r.bar.Set(done)
		return
	}
	if now := time.Now(); now.Sub(r.last) >= r.interval {
		r.last = now
		fmt.Fprintln(r.w, r.line(now))
	}
}

// Finish prints the final state.
func (r *Reporter) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		r.bar.Finish()
		fmt.Fprintln(r.w)
		return
	}
	fmt.Fprintln(r.w, r.line(time.Now()))
}

func (r *Reporter) line(now time.Time) string {
	el := now.Sub(r.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(r.done-r.base) / el
	}
	pct := 100.0
	if r.total > 0 {
		pct = 100 * float64(r.done) / float64(r.total)
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(r.total-r.done)/rate) * time.Second).Round(time.Second).String()
	}
	s := fmt.Sprintf("%s: %d/%d %s (%.1f%%), %.1f %s/s, elapsed %s, ETA %s", r.label, r.done, r.total, r.unit, pct,
		rate, r.unit, time.Duration(el*float64(time.Second)).Round(time.Second), eta)
	if r.note != "" {
		s += ", " + r.note
	}
	return s
}
