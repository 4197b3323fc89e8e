package audio

import (
	"fmt"
	"math"
)

// Family names the model family whose feature extractor earl reproduces.
// Both use Whisper's log-mel features; they differ in how far audio is
// padded, which changes the frame count and, through the global maximum,
// nothing else.
type Family string

// The supported families.
const (
	// Qwen2Audio pads or truncates to 30 s (3000 frames) and its encoder
	// reads all of them.
	Qwen2Audio Family = "qwen2-audio"
	// Qwen25Omni pads or truncates to 300 s (30000 frames); its encoder
	// reads only the valid frames.
	Qwen25Omni Family = "qwen2.5-omni"
)

// Families lists the supported families.
func Families() []Family { return []Family{Qwen2Audio, Qwen25Omni} }

// Config holds the feature parameters of transformers' WhisperFeatureExtractor
// as the Qwen audio models configure it.
type Config struct {
	Family     Family `json:"family"`
	SampleRate int    `json:"sample_rate"`
	NFFT       int    `json:"n_fft"`
	Hop        int    `json:"hop_length"`
	Mels       int    `json:"n_mels"`
	// PadSamples is the length every clip is padded or truncated to
	// (transformers' n_samples = chunk_length * sampling_rate).
	PadSamples int `json:"n_samples"`
}

// ConfigFor returns the feature parameters of a family.
func ConfigFor(f Family) (Config, error) {
	c := Config{Family: f, SampleRate: 16000, NFFT: 400, Hop: 160, Mels: 128}
	switch f {
	case Qwen2Audio:
		c.PadSamples = 30 * 16000
	case Qwen25Omni:
		c.PadSamples = 300 * 16000
	default:
		return Config{}, fmt.Errorf("unknown model family %q: use %q or %q", f, Qwen2Audio, Qwen25Omni)
	}
	return c, nil
}

// TotalFrames is the frame count of the padded log-mel (nb_max_frames):
// the centred STFT gives PadSamples/Hop + 1 frames and the last is dropped.
func (c Config) TotalFrames() int { return c.PadSamples / c.Hop }

// ValidFrames is the number of frames the attention mask marks valid for a
// clip of n samples: transformers subsamples the sample-level mask every Hop
// samples, which gives ceil(n/Hop), capped at TotalFrames.
func (c Config) ValidFrames(n int) int {
	n = min(n, c.PadSamples)
	return min((n+c.Hop-1)/c.Hop, c.TotalFrames())
}

// StoredFrames is the number of leading frames whose window touches at least
// one sample of a clip of n samples. Every later frame sees only the zero
// padding, so its power is exactly 0 and its log-mel value is one constant
// per clip; shards store only these frames and that constant.
func (c Config) StoredFrames(n int) int {
	n = min(n, c.PadSamples)
	// Frame i covers samples [i*Hop - NFFT/2, i*Hop + NFFT/2).
	return min((n+c.NFFT/2+c.Hop-1)/c.Hop, c.TotalFrames())
}

// LogMel is a Whisper log-mel spectrogram in compact form: the first
// StoredFrames frames as computed, the rest of the padded matrix equal to
// Fill. Rebuilding the padded matrix from it is exact to the bit.
type LogMel struct {
	Mels         int
	TotalFrames  int // frames of the padded matrix
	ValidFrames  int // frames the model's attention mask marks valid
	StoredFrames int // frames held in Data
	// Fill is the value of every frame at or after StoredFrames.
	Fill float32
	// Data holds StoredFrames rows of Mels values, frame-major.
	Data []float32
}

// Padded returns the full padded matrix [Mels][TotalFrames], mel-major as
// transformers returns input_features.
func (m *LogMel) Padded() []float32 { return m.matrix(m.TotalFrames) }

// Valid returns the valid frames only, [Mels][ValidFrames], as the
// Qwen2.5-Omni processor selects them with the feature attention mask.
func (m *LogMel) Valid() []float32 { return m.matrix(m.ValidFrames) }

func (m *LogMel) matrix(frames int) []float32 {
	out := make([]float32, m.Mels*frames)
	stored := min(frames, m.StoredFrames)
	for f := 0; f < stored; f++ {
		row := m.Data[f*m.Mels : (f+1)*m.Mels]
		for k, v := range row {
			out[k*frames+f] = v
		}
	}
	for k := 0; k < m.Mels; k++ {
		fill := out[k*frames+stored : (k+1)*frames]
		for i := range fill {
			fill[i] = m.Fill
		}
	}
	return out
}

// melFilter is one triangular Slaney filter, stored sparsely: weights for
// the FFT bins [start, start+len(w)).
type melFilter struct {
	start int
	w     []float64
}

// Extractor computes log-mel features. It holds scratch buffers and an FFT
// plan, so it is not safe for concurrent use: give each goroutine its own.
type Extractor struct {
	cfg     Config
	window  []float64
	filters []melFilter
	fft     *realFFT
	frame   []float64
	power   []float64

	// all disables the shortcut for frames that see only padding; tests use
	// it to check that the shortcut is exact.
	all bool
}

// NewExtractor returns an Extractor for the given parameters.
func NewExtractor(cfg Config) (*Extractor, error) {
	if cfg.NFFT <= 0 || cfg.Hop <= 0 || cfg.Mels <= 0 || cfg.SampleRate <= 0 || cfg.PadSamples < cfg.Hop {
		return nil, fmt.Errorf("invalid feature config %+v", cfg)
	}
	if cfg.PadSamples <= cfg.NFFT/2 {
		return nil, fmt.Errorf("feature config: n_samples %d too short for reflect padding of %d", cfg.PadSamples, cfg.NFFT/2)
	}
	bins := cfg.NFFT/2 + 1
	fft, err := newRealFFT(cfg.NFFT)
	if err != nil {
		return nil, fmt.Errorf("feature config: %w", err)
	}
	e := &Extractor{
		cfg:     cfg,
		window:  hannPeriodic(cfg.NFFT),
		filters: slaneyFilters(bins, cfg.Mels, float64(cfg.SampleRate)),
		fft:     fft,
		frame:   make([]float64, cfg.NFFT),
		power:   make([]float64, bins),
	}
	return e, nil
}

// Config returns the extractor's parameters.
func (e *Extractor) Config() Config { return e.cfg }

// hannPeriodic is torch.hann_window(n) (periodic=True): the first n points of
// an (n+1)-point symmetric Hann window.
func hannPeriodic(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
	}
	return w
}

// slaneyFilters builds transformers' mel_filter_bank(num_frequency_bins=bins,
// num_mel_filters=mels, min_frequency=0, max_frequency=sr/2, norm="slaney",
// mel_scale="slaney") in float64 and keeps each filter's non-zero span.
func slaneyFilters(bins, mels int, sr float64) []melFilter {
	toMel := func(f float64) float64 {
		if f < 1000 {
			return 3 * f / 200
		}
		return 15 + math.Log(f/1000)*27/math.Log(6.4)
	}
	toHz := func(m float64) float64 {
		if m < 15 {
			return 200 * m / 3
		}
		return 1000 * math.Exp(math.Log(6.4)/27*(m-15))
	}
	lo, hi := toMel(0), toMel(sr/2)
	centres := make([]float64, mels+2)
	step := (hi - lo) / float64(mels+1)
	for i := range centres {
		// np.linspace: lo + i*step, with the last point exactly hi.
		centres[i] = toHz(lo + float64(i)*step)
	}
	centres[mels+1] = toHz(hi)
	// np.linspace(0, sr // 2, bins).
	nyq := math.Floor(sr / 2)
	binHz := func(k int) float64 {
		if k == bins-1 {
			return nyq
		}
		return float64(k) * nyq / float64(bins-1)
	}
	filters := make([]melFilter, mels)
	for m := range filters {
		left, centre, right := centres[m], centres[m+1], centres[m+2]
		enorm := 2 / (right - left)
		f := melFilter{start: -1}
		for k := 0; k < bins; k++ {
			hz := binHz(k)
			down := (hz - left) / (centre - left)
			up := (right - hz) / (right - centre)
			w := math.Max(0, math.Min(down, up))
			if w == 0 {
				if f.start >= 0 {
					break
				}
				continue
			}
			if f.start < 0 {
				f.start = k
			}
			f.w = append(f.w, w*enorm)
		}
		if f.start < 0 {
			f.start = 0
		}
		filters[m] = f
	}
	return filters
}

// Compute returns the log-mel features of a 16 kHz mono clip, padded or
// truncated to the family's length. It follows transformers'
// WhisperFeatureExtractor torch path: centred STFT with reflect padding,
// periodic Hann window, power spectrum, last frame dropped, Slaney mel
// filters, log10 clamped at 1e-10, floored at (max - 8) where the max runs
// over the whole padded spectrogram, then (x + 4) / 4.
func (e *Extractor) Compute(samples []float32) *LogMel {
	c := e.cfg
	n := min(len(samples), c.PadSamples)
	x := samples[:n]
	m := &LogMel{
		Mels:         c.Mels,
		TotalFrames:  c.TotalFrames(),
		ValidFrames:  c.ValidFrames(n),
		StoredFrames: c.StoredFrames(n),
	}
	if e.all {
		m.StoredFrames = m.TotalFrames
	}
	m.Data = make([]float32, m.StoredFrames*c.Mels)

	maxv := float32(math.Inf(-1))
	half := c.NFFT / 2
	for f := 0; f < m.StoredFrames; f++ {
		start := f*c.Hop - half
		if start >= 0 && start+c.NFFT <= n {
			for i, v := range x[start : start+c.NFFT] {
				e.frame[i] = float64(v) * e.window[i]
			}
		} else {
			for i := range e.frame {
				e.frame[i] = float64(paddedAt(x, c.PadSamples, start+i)) * e.window[i]
			}
		}
		e.fft.power(e.power, e.frame)
		row := m.Data[f*c.Mels : (f+1)*c.Mels]
		for k, flt := range e.filters {
			var s float64
			for j, w := range flt.w {
				s += w * e.power[flt.start+j]
			}
			v := float32(log10(max(s, 1e-10)))
			row[k] = v
			if v > maxv {
				maxv = v
			}
		}
	}
	// Frames past StoredFrames have zero power: log10 of the clamp.
	pad := float32(math.Log10(1e-10))
	if m.StoredFrames < m.TotalFrames && pad > maxv {
		maxv = pad
	}
	floor := maxv - 8
	for i, v := range m.Data {
		m.Data[i] = (max(v, floor) + 4) / 4
	}
	m.Fill = (max(pad, floor) + 4) / 4
	return m
}

// log10 is math.Log10 for the positive finite values the log-mel takes,
// to within 1e-11, at about a third of the cost: it runs once per mel bin
// and frame. The mantissa's top 7 bits pick a table point c, and
// ln(m) = ln(c) + ln(1 + r) with r = m/c - 1 < 1/128, a short series with
// no division. NaN and +Inf come back as NaN so bad input stays visible.
func log10(x float64) float64 {
	if !(x >= 0x1p-1022 && x <= math.MaxFloat64) {
		if x > 0 && x < 0x1p-1022 {
			return math.Log10(x) // subnormal: never reached after the 1e-10 clamp
		}
		return math.NaN()
	}
	b := math.Float64bits(x)
	e := float64(int(b>>52) - 1023)
	i := (b >> 45) & 127
	m := math.Float64frombits(b&(1<<52-1) | 1023<<52) // [1, 2)
	r := m*logTable.inv[i] - 1
	// ln(1+r), error below r^5/5 < 6e-12.
	ln1p := r * (1 - r*(0.5-r*(1.0/3-r*0.25)))
	return (logTable.ln[i] + ln1p + e*math.Ln2) * (1 / math.Ln10)
}

var logTable = func() (t struct{ inv, ln [128]float64 }) {
	for i := range t.inv {
		c := 1 + float64(i)/128
		t.inv[i] = 1 / c
		t.ln[i] = math.Log(c)
	}
	return t
}()

// paddedAt returns sample j of the STFT input: the clip zero-padded to
// padLen samples, then reflect-padded by NFFT/2 on both sides (torch.stft's
// center=True, pad_mode="reflect").
func paddedAt(x []float32, padLen, j int) float32 {
	if j < 0 {
		j = -j
	} else if j >= padLen {
		j = 2*(padLen-1) - j
	}
	if j < len(x) {
		return x[j]
	}
	return 0
}
