package shards

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"earl/shards/audio"
	"earl/shards/sources"
)

// BuildOptions configure Build; the zero values of the optional fields are
// the documented defaults.
type BuildOptions struct {
	Format    string // source format name (sources.Names)
	Src       string // annotation file
	AudioRoot string // directory audio paths are relative to
	Out       string // shard directory
	Split     string // dataset split, where the format needs one

	Family    audio.Family // default qwen2-audio
	DType     DType        // default float32
	ShardSize int          // samples per shard, default 1000
	Workers   int          // decode / feature goroutines, default GOMAXPROCS
	// MaxRejectFraction fails the run once more than this fraction of the
	// annotation's records are rejected. Default 0.01; negative means 0.
	MaxRejectFraction float64
	Strict            bool // the first reject is fatal
	Resume            bool // finish an interrupted run in Out

	// Progress, when set, is called after every record from the writer
	// goroutine; it must return quickly.
	Progress func(Progress) `json:"-"`
}

// Progress is a snapshot of a running Build.
type Progress struct {
	Done     int // records handled (samples written + rejected), resumed ones included
	Total    int // records in the annotation file
	Samples  int
	Rejected int
	Started  time.Time
	Resumed  int // records that came from shards of an earlier run
}

// BuildResult summarises a finished Build.
type BuildResult struct {
	Manifest *Manifest
	Rejects  []Reject
	Resumed  int // shards kept from an earlier run
}

func (o *BuildOptions) defaults() error {
	if o.Family == "" {
		o.Family = audio.Qwen2Audio
	}
	if o.DType == "" {
		o.DType = Float32
	}
	if o.ShardSize == 0 {
		o.ShardSize = 1000
	}
	if o.ShardSize < 0 {
		return fmt.Errorf("--shard-size must be positive, got %d", o.ShardSize)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxRejectFraction == 0 {
		o.MaxRejectFraction = 0.01
	}
	if o.MaxRejectFraction < 0 {
		o.MaxRejectFraction = 0
	}
	if o.MaxRejectFraction > 1 {
		return fmt.Errorf("--max-reject-fraction must be in [0, 1], got %g", o.MaxRejectFraction)
	}
	switch {
	case o.Src == "":
		return errors.New("no annotation file: pass --src")
	case o.Out == "":
		return errors.New("no output directory: pass --out")
	}
	return nil
}

var shardNameRE = regexp.MustCompile(`^shard-(\d{5,})\.h5$`)

func shardFileName(k int) string { return fmt.Sprintf("shard-%05d.h5", k) }

// item is one annotation record on its way through the pipeline.
type item struct {
	idx    int // position in the annotation file
	entry  sources.Entry
	done   chan outcome
	reject *Reject // set before dispatch when the record is bad on its face
}

type outcome struct {
	rec    Record
	chunk  []byte
	reject *Reject
}

// Build turns an annotation file and its audio into a shard directory. It
// decodes and featurises in parallel, writes shards in annotation order
// from one goroutine, and is deterministic: the same input and options give
// byte-identical shards whatever the worker count. Shards are written under
// temporary names and renamed when complete; manifest.json and rejects.jsonl
// are written last. With Resume it keeps the complete shards of an
// interrupted run and finishes the rest.
func Build(ctx context.Context, opt BuildOptions) (*BuildResult, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	cfg, err := audio.ConfigFor(opt.Family)
	if err != nil {
		return nil, err
	}
	format, err := sources.Lookup(opt.Format)
	if err != nil {
		return nil, err
	}
	srcSum, _, err := fileSHA256(opt.Src)
	if err != nil {
		return nil, fmt.Errorf("annotation file: %w", err)
	}
	entries, err := format.Read(opt.Src, sources.Options{Split: opt.Split})
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s: no records", opt.Src)
	}
	fp := fingerprint(srcSum, opt, cfg)

	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockDir(opt.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	done, err := prepareOut(opt, fp)
	if err != nil {
		return nil, err
	}

	b := &builder{opt: opt, cfg: cfg, entries: entries, fp: fp}
	b.maxRejects = int(math.Floor(opt.MaxRejectFraction * float64(len(entries))))
	start := 0
	for _, s := range done {
		b.shards = append(b.shards, s.entry)
		b.rejects = append(b.rejects, s.rejects...)
		b.samples += s.entry.Samples
		start = s.entry.SourceEnd
	}
	if len(b.rejects) > b.maxRejects {
		return nil, b.tooManyRejects()
	}
	b.progress = Progress{Total: len(entries), Done: start, Samples: b.samples, Rejected: len(b.rejects), Started: time.Now(), Resumed: start}

	if start < len(entries) {
		if err := b.run(ctx, start); err != nil {
			return nil, err
		}
	}
	if b.samples == 0 {
		return nil, fmt.Errorf("%s: no usable samples (%d rejected); see the reasons above", opt.Src, len(b.rejects))
	}
	m := &Manifest{
		Format:        "earl-shards",
		FormatVersion: FormatVersion,
		EarlVersion:   EarlVersion,
		Source: ManifestSrc{Format: opt.Format, Path: opt.Src, SHA256: srcSum, Records: len(entries),
			AudioRoot: opt.AudioRoot, Split: opt.Split},
		Features:    cfg,
		TotalFrames: cfg.TotalFrames(),
		DType:       opt.DType,
		ShardSize:   opt.ShardSize,
		Samples:     b.samples,
		Shards:      b.shards,
		Rejects:     RejectSummary{Total: len(b.rejects), ByReason: reasonCounts(b.rejects), File: RejectsName},
		Fingerprint: fp,
	}
	for _, s := range b.shards {
		m.Duration += s.duration
	}
	m.Duration = math.Round(m.Duration*1000) / 1000
	if err := writeRejects(filepath.Join(opt.Out, RejectsName), b.rejects); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(opt.Out, ManifestName), append(mustJSONIndent(m), '\n')); err != nil {
		return nil, err
	}
	return &BuildResult{Manifest: m, Rejects: b.rejects, Resumed: len(done)}, nil
}

// fingerprint hashes everything that decides a shard's bytes, so --resume
// never mixes shards built from different inputs or settings.
func fingerprint(srcSum string, o BuildOptions, c audio.Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "earl %s format %d\nsrc %s\nformat %s\nsplit %s\nfeatures %+v\ndtype %s\nshard-size %d\n",
		EarlVersion, FormatVersion, srcSum, o.Format, o.Split, c, o.DType, o.ShardSize)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// lockDir takes an exclusive lock on DIR/.earl-shard.lock so two sharders
// never write the same directory.
func lockDir(dir string) (func(), error) {
	p := filepath.Join(dir, ".earl-shard.lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is being written by another `launcher shard` (lock %s held)", dir, p)
	}
	return func() {
		os.Remove(p)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// doneShard is a complete shard found by --resume.
type doneShard struct {
	entry   ShardEntry
	rejects []Reject
}

// prepareOut checks the output directory. Without Resume it must hold no
// shards; with Resume the complete shards (final names, contiguous from 0,
// same fingerprint) are kept and stale temporary files removed.
func prepareOut(o BuildOptions, fp string) ([]doneShard, error) {
	ents, err := os.ReadDir(o.Out)
	if err != nil {
		return nil, err
	}
	var finals []int
	var temps, others []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case name == ".earl-shard.lock":
		case shardNameRE.MatchString(name):
			var k int
			fmt.Sscanf(shardNameRE.FindStringSubmatch(name)[1], "%d", &k)
			finals = append(finals, k)
		case strings.HasSuffix(name, ".tmp") || strings.Contains(name, ".tmp-"):
			temps = append(temps, name)
		default:
			others = append(others, name)
		}
	}
	if !o.Resume {
		if len(finals)+len(temps) > 0 || contains(others, ManifestName) {
			return nil, fmt.Errorf("output directory %s already holds shards: pass --resume to finish an interrupted run with the same flags, or choose an empty directory", o.Out)
		}
		return nil, nil
	}
	for _, t := range temps {
		if err := os.Remove(filepath.Join(o.Out, t)); err != nil {
			return nil, fmt.Errorf("resume: remove stale %s: %w", t, err)
		}
	}
	// A finished run is rebuilt from its shards: manifest and rejects are
	// rewritten identically.
	os.Remove(filepath.Join(o.Out, ManifestName))
	os.Remove(filepath.Join(o.Out, RejectsName))
	sort.Ints(finals)
	var done []doneShard
	for k, got := range finals {
		if got != k {
			return nil, fmt.Errorf("resume: %s has %s but no %s: the directory was not written by one run; start again in an empty directory",
				o.Out, shardFileName(got), shardFileName(k))
		}
		p := filepath.Join(o.Out, shardFileName(k))
		s, err := openShard(p)
		if err != nil {
			return nil, fmt.Errorf("resume: %w; delete it to rebuild it", err)
		}
		hdr, rejects := s.hdr, s.rejects
		var dur float64
		for _, r := range s.recs {
			dur += r.Duration
		}
		s.close()
		if hdr.Fingerprint != fp {
			return nil, fmt.Errorf("resume: %s was built from a different annotation file or with different flags (fingerprint %s, now %s): rerun with the original flags, or start in an empty directory",
				p, hdr.Fingerprint, fp)
		}
		if hdr.Index != k || (k > 0 && hdr.SourceBegin != done[k-1].entry.SourceEnd) {
			return nil, fmt.Errorf("resume: %s does not continue %s", p, shardFileName(k-1))
		}
		sum, size, err := fileSHA256(p)
		if err != nil {
			return nil, err
		}
		done = append(done, doneShard{
			entry: ShardEntry{File: shardFileName(k), Samples: hdr.Samples, Bytes: size, SHA256: sum,
				SourceBegin: hdr.SourceBegin, SourceEnd: hdr.SourceEnd, duration: dur},
			rejects: rejects,
		})
	}
	return done, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

type builder struct {
	opt        BuildOptions
	cfg        audio.Config
	entries    []sources.Entry
	fp         string
	maxRejects int

	shards   []ShardEntry
	rejects  []Reject
	samples  int
	progress Progress

	cur        *shardWriter
	curRejects []Reject // rejects seen while no shard is open
	curDur     float64
}

func rejectOf(e sources.Entry, idx int, err error) *Reject {
	return &Reject{File: e.Loc.File, Line: e.Loc.Line, Index: e.Loc.Index, ID: e.Sample.ID, Audio: e.Sample.Audio,
		Reason: sources.ReasonOf(err), Detail: detailOf(err), SourceIndex: idx}
}

func detailOf(err error) string {
	var re *sources.RecordError
	if errors.As(err, &re) {
		return re.Detail
	}
	return err.Error()
}

func (b *builder) run(ctx context.Context, start int) error {
	g, ctx := errgroup.WithContext(ctx)
	window := 4 * b.opt.Workers
	order := make(chan *item, window)
	work := make(chan *item)

	// Dispatcher: records in annotation order. Duplicate ids are found here,
	// over the whole file, so resumed runs reject the same records.
	g.Go(func() error {
		defer close(order)
		defer close(work)
		seen := make(map[string]int, len(b.entries))
		for i, e := range b.entries {
			first, dup := seen[e.Sample.ID]
			if e.Err == nil && e.Sample.ID != "" && !dup {
				seen[e.Sample.ID] = i
			}
			if i < start {
				continue
			}
			it := &item{idx: i, entry: e, done: make(chan outcome, 1)}
			switch {
			case e.Err != nil:
				it.reject = rejectOf(e, i, e.Err)
			case dup:
				it.reject = rejectOf(e, i, &sources.RecordError{Reason: sources.ReasonDuplicateID,
					Detail: fmt.Sprintf("id %q already used by %s", e.Sample.ID, b.entries[first].Loc)})
			}
			select {
			case order <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
			if it.reject != nil {
				it.done <- outcome{reject: it.reject}
				continue
			}
			select {
			case work <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for w := 0; w < b.opt.Workers; w++ {
		g.Go(func() error {
			ext, err := audio.NewExtractor(b.cfg)
			if err != nil {
				return err
			}
			st := &workerState{ext: ext, resamplers: map[int]*audio.Resampler{}}
			for it := range work {
				it.done <- b.process(st, it)
			}
			return nil
		})
	}
	g.Go(func() error { return b.write(ctx, order) })
	err := g.Wait()
	if b.cur != nil {
		b.cur.abort()
		b.cur = nil
	}
	return err
}

// workerState is one worker's reusable machinery.
type workerState struct {
	ext        *audio.Extractor
	resamplers map[int]*audio.Resampler // by input rate
	buf        []float32                // resampled audio, reused
}

// process decodes, resamples and featurises one record.
func (b *builder) process(st *workerState, it *item) outcome {
	s := it.entry.Sample
	path := s.AudioPath(b.opt.AudioRoot)
	bad := func(reason sources.Reason, detail string) outcome {
		return outcome{reject: rejectOf(it.entry, it.idx, &sources.RecordError{Reason: reason, Detail: detail})}
	}
	clip, err := audio.Decode(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return bad(sources.ReasonMissingAudio, fmt.Sprintf("audio file %s not found (is --audio-root right?)", path))
	case errors.Is(err, audio.ErrEmpty):
		return bad(sources.ReasonEmptyAudio, err.Error())
	case err != nil:
		return bad(sources.ReasonUndecodableAudio, err.Error())
	}
	x := clip.Samples
	if clip.SampleRate != b.cfg.SampleRate {
		rs := st.resamplers[clip.SampleRate]
		if rs == nil {
			if rs, err = audio.NewResampler(clip.SampleRate, b.cfg.SampleRate); err != nil {
				return bad(sources.ReasonUndecodableAudio, fmt.Sprintf("audio %s: %v", path, err))
			}
			st.resamplers[clip.SampleRate] = rs
		}
		st.buf = rs.Resample(st.buf, x)
		x = st.buf
	}
	mel := st.ext.Compute(x)
	// NaN or infinite samples (float WAVs can hold them) poison every frame
	// they touch; checking the features is cheaper than the samples.
	for _, v := range mel.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return bad(sources.ReasonUndecodableAudio, fmt.Sprintf("audio %s holds NaN or infinite samples", path))
		}
	}
	chunk, err := encodeChunk(mel.Data, b.opt.DType)
	if err != nil {
		return bad(sources.ReasonUndecodableAudio, "compress features: "+err.Error())
	}
	rec := Record{
		Sample:      s,
		SourceIndex: it.idx,
		Duration:    clip.Duration(),
		SampleRate:  clip.SampleRate,
		Channels:    clip.Channels,
		AudioFormat: clip.Format,
		Mel:         &audio.LogMel{Mels: mel.Mels, TotalFrames: mel.TotalFrames, ValidFrames: mel.ValidFrames, StoredFrames: mel.StoredFrames, Fill: mel.Fill},
	}
	return outcome{rec: rec, chunk: chunk}
}

// write consumes outcomes in annotation order and fills shards.
func (b *builder) write(ctx context.Context, order <-chan *item) error {
	for it := range order {
		var o outcome
		select {
		case o = <-it.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if o.reject != nil {
			if err := b.addReject(*o.reject); err != nil {
				return err
			}
		} else if err := b.addSample(o); err != nil {
			return err
		}
		b.progress.Done = it.idx + 1
		if b.opt.Progress != nil {
			b.progress.Samples, b.progress.Rejected = b.samples, len(b.rejects)
			b.opt.Progress(b.progress)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if b.cur == nil && len(b.curRejects) > 0 && len(b.shards) > 0 {
		// Only rejects followed the last kept shard (possible when a
		// resumed run finds audio gone): they still need a shard to live
		// in, so --resume and the manifest stay complete.
		if err := b.openShard(); err != nil {
			return err
		}
	}
	if b.cur != nil {
		return b.closeShard(len(b.entries))
	}
	return nil
}

func (b *builder) addReject(r Reject) error {
	b.rejects = append(b.rejects, r)
	if b.opt.Strict {
		return fmt.Errorf("--strict: %s", r)
	}
	if len(b.rejects) > b.maxRejects {
		return b.tooManyRejects()
	}
	if b.cur != nil {
		b.cur.rejects = append(b.cur.rejects, r)
	} else {
		b.curRejects = append(b.curRejects, r)
	}
	return nil
}

func (b *builder) tooManyRejects() error {
	counts := reasonCounts(b.rejects)
	var parts []string
	for _, r := range sortedReasons(counts) {
		parts = append(parts, fmt.Sprintf("%s %d", r, counts[r]))
	}
	var first []string
	for i, r := range b.rejects {
		if i == 5 {
			first = append(first, "...")
			break
		}
		first = append(first, "  "+r.String())
	}
	path := filepath.Join(b.opt.Out, RejectsName)
	werr := writeRejects(path, b.rejects)
	where := "all of them are in " + path
	if werr != nil {
		where = "could not write " + path + ": " + werr.Error()
	}
	return fmt.Errorf("%d of %d records rejected (%s), more than --max-reject-fraction %g allows (%d); %s; first ones:\n%s",
		len(b.rejects), len(b.entries), strings.Join(parts, ", "), b.opt.MaxRejectFraction, b.maxRejects, where, strings.Join(first, "\n"))
}

func sortedReasons(m map[sources.Reason]int) []sources.Reason {
	var rs []sources.Reason
	for r := range m {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	return rs
}

func (b *builder) addSample(o outcome) error {
	if b.cur != nil && len(b.cur.recs) == b.opt.ShardSize {
		if err := b.closeShard(o.rec.SourceIndex); err != nil {
			return err
		}
	}
	if b.cur == nil {
		if err := b.openShard(); err != nil {
			return err
		}
	}
	if err := b.cur.add(o.rec, o.chunk); err != nil {
		return err
	}
	b.curDur += o.rec.Duration
	b.samples++
	return nil
}

// openShard starts the next shard under its temporary name; it covers the
// records from the end of the previous one.
func (b *builder) openShard() error {
	k := len(b.shards)
	begin := 0
	if k > 0 {
		begin = b.shards[k-1].SourceEnd
	}
	hdr := header{Features: b.cfg, DType: b.opt.DType, Source: b.opt.Format, Fingerprint: b.fp, Index: k, SourceBegin: begin}
	w, err := createShard(filepath.Join(b.opt.Out, shardFileName(k)+".tmp"), hdr)
	if err != nil {
		return err
	}
	w.rejects = b.curRejects
	b.cur, b.curRejects, b.curDur = w, nil, 0
	return nil
}

// closeShard finishes the open shard, covering records up to end, renames it
// to its final name and records it.
func (b *builder) closeShard(end int) error {
	w := b.cur
	b.cur = nil
	if err := w.finish(end); err != nil {
		os.Remove(w.path)
		return err
	}
	final := strings.TrimSuffix(w.path, ".tmp")
	if err := os.Rename(w.path, final); err != nil {
		os.Remove(w.path)
		return err
	}
	sum, size, err := fileSHA256(final)
	if err != nil {
		return err
	}
	b.shards = append(b.shards, ShardEntry{File: filepath.Base(final), Samples: len(w.recs), Bytes: size, SHA256: sum,
		SourceBegin: w.hdr.SourceBegin, SourceEnd: end, duration: b.curDur})
	return nil
}

func writeRejects(path string, rs []Reject) error {
	var sb strings.Builder
	w := bufio.NewWriter(&sb)
	for _, r := range rs {
		w.WriteString(jsonText(r))
		w.WriteByte('\n')
	}
	w.Flush()
	return writeFileAtomic(path, []byte(sb.String()))
}
