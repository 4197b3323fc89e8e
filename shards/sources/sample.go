// Package sources reads the annotation files of audio question-answering
// datasets (AVQA, MMAU, MMSU, AudSem, CountingQA, SoundMind and a generic
// JSONL format) and normalises every record to one Sample.
//
// Each dataset format lives in its own file and registers itself under the
// name users pass to `launcher shard --in NAME`. A reader never stops at a bad
// record: it returns an Entry whose Err says what is wrong, so the caller can
// record the reject (file, line or index, id, reason) and go on.
package sources

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Sample is one audio question with its answer, the same shape whatever the
// dataset it came from.
type Sample struct {
	// ID is unique within a dataset; numeric ids are kept as their decimal text.
	ID string `json:"id"`
	// Source is the dataset format name ("avqa", "mmau", ...).
	Source string `json:"source"`
	// Audio is the audio path as the annotation gives it (relative to the
	// audio root unless absolute).
	Audio string `json:"audio"`
	// Question is the question text without any embedded choice list.
	Question string `json:"question"`
	// Choices are the answer options; empty for open-ended questions.
	Choices []string `json:"choices,omitempty"`
	// AnswerIndex is the 0-based index of Answer in Choices, or -1 when the
	// question is open-ended.
	AnswerIndex int `json:"answer_index"`
	// Answer is the reference answer text.
	Answer string `json:"answer"`
	// Task, Categories, SubCategory and Difficulty are the dataset's own
	// labels where it gives them (MMAU: task "sound", category "Reasoning").
	Task        string   `json:"task,omitempty"`
	Categories  []string `json:"categories,omitempty"`
	SubCategory string   `json:"sub_category,omitempty"`
	Difficulty  string   `json:"difficulty,omitempty"`
	// Extra holds the remaining fields of the record that later stages may
	// want (AVQA's question_type, SoundMind's reasoning trace, ...).
	Extra map[string]string `json:"extra,omitempty"`
}

// Validate checks the invariants every source must produce: an id, an audio
// path, a question, and an answer that is among the choices when there are
// choices.
func (s *Sample) Validate() error {
	switch {
	case strings.TrimSpace(s.ID) == "":
		return &RecordError{Reason: ReasonMalformed, Detail: "empty id"}
	case strings.TrimSpace(s.Audio) == "":
		return &RecordError{Reason: ReasonMalformed, Detail: "no audio path"}
	case strings.TrimSpace(s.Question) == "":
		return &RecordError{Reason: ReasonMalformed, Detail: "empty question"}
	}
	if len(s.Choices) == 0 {
		if s.AnswerIndex != -1 {
			return &RecordError{Reason: ReasonMalformed, Detail: fmt.Sprintf("answer index %d without choices", s.AnswerIndex)}
		}
		if strings.TrimSpace(s.Answer) == "" {
			return &RecordError{Reason: ReasonMalformed, Detail: "empty answer"}
		}
		return nil
	}
	if s.AnswerIndex < 0 || s.AnswerIndex >= len(s.Choices) {
		return &RecordError{Reason: ReasonAnswerNotInChoices,
			Detail: fmt.Sprintf("answer %q is not among the %d choices %q", s.Answer, len(s.Choices), s.Choices)}
	}
	if s.Choices[s.AnswerIndex] != s.Answer {
		return &RecordError{Reason: ReasonAnswerNotInChoices,
			Detail: fmt.Sprintf("answer %q differs from choice %d %q", s.Answer, s.AnswerIndex, s.Choices[s.AnswerIndex])}
	}
	return nil
}

// AudioPath resolves the sample's audio path against the audio root.
func (s *Sample) AudioPath(root string) string {
	if filepath.IsAbs(s.Audio) || root == "" {
		return filepath.Clean(s.Audio)
	}
	return filepath.Join(root, s.Audio)
}

// Reason classifies why a record was rejected; rejects.jsonl and the
// manifest's summary count by it.
type Reason string

// The reject reasons.
const (
	ReasonMalformed          Reason = "malformed"
	ReasonAnswerNotInChoices Reason = "answer-not-in-choices"
	ReasonDuplicateID        Reason = "duplicate-id"
	ReasonMissingAudio       Reason = "missing-audio"
	ReasonUndecodableAudio   Reason = "undecodable-audio"
	ReasonEmptyAudio         Reason = "empty-audio"
)

// RecordError says why one record cannot be used.
type RecordError struct {
	Reason Reason
	Detail string
}

func (e *RecordError) Error() string { return string(e.Reason) + ": " + e.Detail }

// ReasonOf returns the reject reason carried by err, or ReasonMalformed.
func ReasonOf(err error) Reason {
	var re *RecordError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ReasonMalformed
}

// Malformed returns a RecordError for a record that cannot be parsed.
func Malformed(format string, args ...any) error {
	return &RecordError{Reason: ReasonMalformed, Detail: fmt.Sprintf(format, args...)}
}

// Location says where a record sits in its annotation file: a 1-based Line
// for line-oriented files, a 0-based Index for JSON arrays.
type Location struct {
	File  string `json:"file"`
	Line  int    `json:"line,omitempty"`
	Index *int   `json:"index,omitempty"`
}

func (l Location) String() string {
	switch {
	case l.Line > 0:
		return fmt.Sprintf("%s:%d", l.File, l.Line)
	case l.Index != nil:
		return fmt.Sprintf("%s[%d]", l.File, *l.Index)
	}
	return l.File
}

// AtLine and AtIndex build Locations.
func AtLine(file string, line int) Location { return Location{File: file, Line: line} }

// AtIndex is the Location of element i of a JSON array.
func AtIndex(file string, i int) Location { return Location{File: file, Index: &i} }

// Entry is one record of an annotation file: a Sample, or the error that
// keeps it out.
type Entry struct {
	Loc    Location
	Sample Sample
	// Err is non-nil for a record that must be rejected; Sample.ID is set
	// when it could be read.
	Err error
}

// Options configure a reader.
type Options struct {
	// Split names the dataset split where the audio layout needs it
	// (SoundMind keeps audio at SPLIT/ID/question.wav). Empty: derived from
	// the annotation file name.
	Split string
}

// A Format reads one annotation file. Read fails only when the file as a
// whole cannot be read (missing, not JSON at all); bad records come back as
// Entries with Err set.
type Format interface {
	Name() string
	// Describe is one line for --help.
	Describe() string
	Read(path string, opt Options) ([]Entry, error)
}

var registry = map[string]Format{}

// register adds a format; called from each format file's init.
func register(f Format) {
	if _, dup := registry[f.Name()]; dup {
		panic("sources: format registered twice: " + f.Name())
	}
	registry[f.Name()] = f
}

// Lookup returns the format called name.
func Lookup(name string) (Format, error) {
	f, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("unknown source format %q: known formats are %s", name, strings.Join(Names(), ", "))
	}
	return f, nil
}

// Names lists the registered formats in sorted order.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
