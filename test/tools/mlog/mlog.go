// Package mlog is a minimal stand-in for monis.app/mlog v0.0.4 (see go.mod for why): the same names and
// signatures for the part of its API that the Azure workload identity webhook uses, on top of logr.
package mlog

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// LogLevel is one of the levels --log-level accepts; the empty string means warnings and errors only.
type LogLevel string

const (
	LevelWarning LogLevel = ""
	LevelInfo    LogLevel = "info"
	LevelDebug   LogLevel = "debug"
	LevelTrace   LogLevel = "trace"
	LevelAll     LogLevel = "all"
)

// LogFormat is how log lines are written; this stand-in always writes JSON.
type LogFormat string

const (
	FormatJSON LogFormat = "json"
	FormatCLI  LogFormat = "cli"
)

// LogSpec is the level and format a program asks for.
type LogSpec struct {
	Level  LogLevel  `json:"level,omitempty"`
	Format LogFormat `json:"format,omitempty"`
}

// The logr verbosity each level enables, as in the original: warnings at 0, info at 2, debug at 4, trace at 6.
var verbosity = map[LogLevel]int{LevelWarning: 0, LevelInfo: 2, LevelDebug: 4, LevelTrace: 6, LevelAll: 108}

var current atomic.Int64

var root = funcr.NewJSON(func(line string) { fmt.Fprintln(os.Stderr, line) }, funcr.Options{
	LogTimestamp: true,
	Verbosity:    verbosity[LevelAll],
})

// ValidateAndSetLogLevelAndFormatGlobally sets the level every logger honours from now on.
func ValidateAndSetLogLevelAndFormatGlobally(_ context.Context, spec LogSpec) error {
	v, ok := verbosity[spec.Level]
	if !ok {
		return fmt.Errorf("unknown log level %q", spec.Level)
	}
	if spec.Format != "" && spec.Format != FormatJSON && spec.Format != FormatCLI {
		return fmt.Errorf("unknown log format %q", spec.Format)
	}
	current.Store(int64(v))
	return nil
}

// Enabled reports whether messages at level are written.
func Enabled(level LogLevel) bool {
	v, ok := verbosity[level]
	return ok && int64(v) <= current.Load()
}

// Setup returns the function to defer that flushes logs; lines are written unbuffered, so it has nothing to do.
func Setup() func() { return func() {} }

// Logr is the logr.Logger behind every Logger, for libraries such as controller-runtime that take one.
func Logr() logr.Logger { return logr.New(&levelSink{root.GetSink()}) }

// Fatal logs err and exits with status 1.
func Fatal(err error, keysAndValues ...any) {
	Logr().Error(err, "fatal error", keysAndValues...)
	os.Exit(1)
}

// Logger is the structured logger New returns.
type Logger interface {
	Error(msg string, err error, keysAndValues ...any)
	Warning(msg string, keysAndValues ...any)
	Info(msg string, keysAndValues ...any)
	Debug(msg string, keysAndValues ...any)
	WithValues(keysAndValues ...any) Logger
	WithName(name string) Logger
}

// New returns a Logger writing at the global level.
func New() Logger { return logger{Logr()} }

type logger struct{ l logr.Logger }

func (g logger) Error(msg string, err error, kv ...any) { g.l.WithCallDepth(1).Error(err, msg, kv...) }
func (g logger) Warning(msg string, kv ...any) {
	g.l.WithCallDepth(1).V(verbosity[LevelWarning]).Info(msg, kv...)
}
func (g logger) Info(msg string, kv ...any) {
	g.l.WithCallDepth(1).V(verbosity[LevelInfo]).Info(msg, kv...)
}
func (g logger) Debug(msg string, kv ...any) {
	g.l.WithCallDepth(1).V(verbosity[LevelDebug]).Info(msg, kv...)
}
func (g logger) WithValues(kv ...any) Logger { return logger{g.l.WithValues(kv...)} }
func (g logger) WithName(name string) Logger { return logger{g.l.WithName(name)} }

// levelSink filters by the global level at the time of each call, so loggers made before
// ValidateAndSetLogLevelAndFormatGlobally (package-level ones) honour it too.
type levelSink struct{ logr.LogSink }

func (s *levelSink) Enabled(level int) bool { return int64(level) <= current.Load() }

func (s *levelSink) WithValues(kv ...any) logr.LogSink {
	return &levelSink{s.LogSink.WithValues(kv...)}
}

func (s *levelSink) WithName(name string) logr.LogSink { return &levelSink{s.LogSink.WithName(name)} }

func (s *levelSink) WithCallDepth(depth int) logr.LogSink {
	if d, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return &levelSink{d.WithCallDepth(depth)}
	}
	return s
}
