// Package synth generates synthetic audio question-answering datasets in
// the on-disk format of each supported source, so `launcher shard` reads
// them exactly as it reads the real thing. Every question has an answer
// that can be verified from the audio alone (count the beeps, which tone is
// higher, ...), which makes the sets usable for training demos as well as
// for tests.
package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// clip is a mono signal being assembled at one sample rate.
type clip struct {
	rate int
	x    []float64
}

func newClip(rate int, seconds float64) *clip {
	return &clip{rate: rate, x: make([]float64, int(math.Round(seconds*float64(rate))))}
}

// tone adds a sine burst with raised-cosine edges (no clicks, so the
// spectrum shows the tone and not the edges) starting at t0 seconds.
func (c *clip) tone(t0, dur, freq, amp float64) {
	c.sweep(t0, dur, freq, freq, amp)
}

// sweep adds a linear chirp from f0 to f1 Hz.
func (c *clip) sweep(t0, dur, f0, f1, amp float64) {
	i0 := int(t0 * float64(c.rate))
	n := int(dur * float64(c.rate))
	ramp := max(1, min(n/2, c.rate/100)) // 10 ms edges
	phase := 0.0
	for i := 0; i < n && i0+i < len(c.x); i++ {
		t := float64(i) / float64(c.rate)
		f := f0 + (f1-f0)*t/dur
		phase += 2 * math.Pi * f / float64(c.rate)
		g := 1.0
		if i < ramp {
			g = 0.5 - 0.5*math.Cos(math.Pi*float64(i)/float64(ramp))
		} else if n-1-i < ramp {
			g = 0.5 - 0.5*math.Cos(math.Pi*float64(n-1-i)/float64(ramp))
		}
		if i0+i >= 0 {
			c.x[i0+i] += amp * g * math.Sin(phase)
		}
	}
}

// noise adds white noise at the given amplitude (standard deviation).
func (c *clip) noise(r *rand.Rand, amp float64) {
	for i := range c.x {
		c.x[i] += amp * r.NormFloat64()
	}
}

// question is one generated item before it is written in a source format.
type question struct {
	task     string // count, pitch, duration, loudness, sweep
	text     string
	choices  []string
	answer   int // index into choices
	category string
	clip     *clip
	// explanation is a short reasoning trace (used by AudSem's "thinking"
	// and SoundMind's answer field).
	explanation string
}

// Tasks lists the generators; "mixed" draws one of them per sample.
var Tasks = []string{"count", "pitch", "duration", "loudness", "sweep"}

// generate makes one question of the given task with audio at rate Hz,
// about seconds long.
func generate(task string, r *rand.Rand, rate int, seconds float64) (*question, error) {
	if task == "mixed" {
		task = Tasks[r.IntN(len(Tasks))]
	}
	c := newClip(rate, seconds)
	c.noise(r, 0.003)
	q := &question{task: task, clip: c}
	// Frequencies stay below 4 kHz so every output rate (>= 8 kHz)
	// carries them.
	base := 300 + 900*r.Float64()
	half := seconds / 2
	switch task {
	case "count":
		k := 1 + r.IntN(5)
		slot := seconds / float64(k+1)
		for i := 0; i < k; i++ {
			c.tone(slot*(float64(i)+0.5)+0.05, min(0.15, slot/2), base, 0.4)
		}
		q.text = "How many beeps are in the audio clip?"
		q.choices, q.answer = numberChoices(r, k)
		q.category = "Counting"
		q.explanation = fmt.Sprintf("I hear separate short beeps and count them one by one: there are %d.", k)
	case "pitch":
		f := []float64{base, base * (1.3 + 0.7*r.Float64())}
		hi := 1 // index of the higher tone
		if r.IntN(2) == 0 {
			f[0], f[1] = f[1], f[0]
			hi = 0
		}
		c.tone(0.1*seconds, 0.3*seconds, f[0], 0.3)
		c.tone(0.6*seconds, 0.3*seconds, f[1], 0.3)
		q.text = "Two tones play one after the other. Which tone is higher in pitch?"
		q.choices, q.answer = []string{"the first tone", "the second tone"}, hi
		q.category = "Pitch Comparison"
		q.explanation = fmt.Sprintf("The first tone is near %.0f Hz and the second near %.0f Hz, so the %s is higher.", f[0], f[1], q.choices[q.answer])
	case "duration":
		d := []float64{0.1 * seconds, 0.35 * seconds}
		long := r.IntN(2)
		if long == 0 {
			d[0], d[1] = d[1], d[0]
		}
		c.tone(0.05*seconds, d[0], base, 0.3)
		c.tone(half+0.05*seconds, d[1], base, 0.3)
		q.text = "Two sounds play in turn. Which sound lasts longer?"
		q.choices, q.answer = []string{"the first sound", "the second sound"}, long
		q.category = "Duration Comparison"
		q.explanation = fmt.Sprintf("The first sound lasts about %.1f s and the second about %.1f s.", d[0], d[1])
	case "loudness":
		a := []float64{0.4, 0.4 * math.Pow(10, -(6+10*r.Float64())/20)}
		loud := r.IntN(2)
		if loud == 1 {
			a[0], a[1] = a[1], a[0]
		}
		c.tone(0.1*seconds, 0.3*seconds, base, a[0])
		c.tone(0.6*seconds, 0.3*seconds, base, a[1])
		q.text = "The same tone plays twice. Is it louder the first time or the second time?"
		q.choices, q.answer = []string{"the first time", "the second time"}, loud
		q.category = "Loudness Comparison"
		q.explanation = fmt.Sprintf("The two tones differ by %.0f dB; the %s is louder.", 20*math.Log10(max(a[0], a[1])/min(a[0], a[1])), q.choices[q.answer])
	case "sweep":
		up := r.IntN(2) == 0
		f0, f1 := base, base*(2+r.Float64())
		if !up {
			f0, f1 = f1, f0
		}
		c.sweep(0.1*seconds, 0.8*seconds, f0, f1, 0.3)
		q.text = "A tone glides in pitch. Is it rising or falling?"
		q.choices = []string{"rising", "falling"}
		if !up {
			q.answer = 1
		}
		q.category = "Pitch Contour"
		q.explanation = fmt.Sprintf("The tone moves from about %.0f Hz to %.0f Hz, so it is %s.", f0, f1, q.choices[q.answer])
	default:
		return nil, fmt.Errorf("unknown synth task %q: use mixed or one of %v", task, Tasks)
	}
	return q, nil
}

// numberChoices returns four distinct counts including k, in random order.
func numberChoices(r *rand.Rand, k int) ([]string, int) {
	set := map[int]bool{k: true}
	vals := []int{k}
	for len(vals) < 4 {
		v := 1 + r.IntN(7)
		if !set[v] {
			set[v] = true
			vals = append(vals, v)
		}
	}
	r.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	out := make([]string, len(vals))
	ans := 0
	for i, v := range vals {
		out[i] = fmt.Sprint(v)
		if v == k {
			ans = i
		}
	}
	return out, ans
}
