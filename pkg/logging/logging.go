// Package logging builds drwatchd's zap logger: JSON with the field names Cloud Logging reads
// (severity, message, time) in production, or human console output.
package logging

import (
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger writing to w at level ("debug", "info", "warn", "error") in format
// ("json" or "console").
func New(w io.Writer, level, format string) (*zap.Logger, error) {
	log, _, err := NewLevel(w, level, format)
	return log, err
}

// ParseLevel parses "debug", "info", "warn" or "error".
func ParseLevel(level string) (zapcore.Level, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return lvl, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return lvl, nil
}

// NewLevel is New with the level returned as a zap.AtomicLevel, which a config reload sets.
func NewLevel(w io.Writer, level, format string) (*zap.Logger, zap.AtomicLevel, error) {
	parsed, err := ParseLevel(level)
	if err != nil {
		return nil, zap.AtomicLevel{}, err
	}
	lvl := zap.NewAtomicLevelAt(parsed)
	var enc zapcore.Encoder
	switch format {
	case "json", "":
		ec := zapcore.EncoderConfig{
			TimeKey:        "time",
			LevelKey:       "severity",
			NameKey:        "logger",
			CallerKey:      "caller",
			MessageKey:     "message",
			StacktraceKey:  "stack_trace",
			LineEnding:     zapcore.DefaultLineEnding,
			EncodeLevel:    cloudLoggingLevel,
			EncodeTime:     zapcore.RFC3339NanoTimeEncoder,
			EncodeDuration: zapcore.StringDurationEncoder,
			EncodeCaller:   zapcore.ShortCallerEncoder,
		}
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		ec.EncodeDuration = zapcore.StringDurationEncoder
		ec.CallerKey = ""
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, zap.AtomicLevel{}, fmt.Errorf("log format %q: want json or console", format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core, zap.AddCaller()), lvl, nil
}

// cloudLoggingLevel writes the LogSeverity names Cloud Logging understands.
func cloudLoggingLevel(l zapcore.Level, enc zapcore.PrimitiveArrayEncoder) {
	switch l {
	case zapcore.DebugLevel:
		enc.AppendString("DEBUG")
	case zapcore.InfoLevel:
		enc.AppendString("INFO")
	case zapcore.WarnLevel:
		enc.AppendString("WARNING")
	case zapcore.ErrorLevel:
		enc.AppendString("ERROR")
	case zapcore.DPanicLevel, zapcore.PanicLevel:
		enc.AppendString("CRITICAL")
	case zapcore.FatalLevel:
		enc.AppendString("EMERGENCY")
	default:
		enc.AppendString("DEFAULT")
	}
}
