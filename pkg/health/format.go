package health

import (
	"math"
	"strconv"
	"time"
)

// Allocation-free formatting helpers for reasons: each appends to a reused buffer.

// appendRatio writes a ratio with two significant digits below 0.1 and two decimals above,
// trailing zeros trimmed: 0.31, 0.05, 0.012, 0.0012, 1.
func appendRatio(b []byte, v float64) []byte {
	if v <= 0 || math.IsNaN(v) {
		return append(b, '0')
	}
	prec := 2
	if v < 0.095 {
		prec = 1 - int(math.Floor(math.Log10(v)))
		if prec > 6 {
			prec = 6
		}
	}
	n := len(b)
	b = strconv.AppendFloat(b, v, 'f', prec, 64)
	return trimZeros(b, n)
}

// trimZeros drops trailing zeros (and a trailing dot) of the decimal written from b[start:].
func trimZeros(b []byte, start int) []byte {
	dot := false
	for i := start; i < len(b); i++ {
		if b[i] == '.' {
			dot = true
			break
		}
	}
	if !dot {
		return b
	}
	for len(b) > start && b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	if len(b) > start && b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	return b
}

// appendCount writes a non-negative count rounded to an integer with thousands separators.
func appendCount(b []byte, v float64) []byte {
	if v < 0 || math.IsNaN(v) {
		v = 0
	}
	if v >= 1e18 {
		return strconv.AppendFloat(b, v, 'g', 3, 64)
	}
	n := uint64(math.Round(v))
	var tmp [32]byte
	i := len(tmp)
	for d := 0; ; d++ {
		if d > 0 && d%3 == 0 {
			i--
			tmp[i] = ','
		}
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// appendBurn writes a burn rate with one decimal: 16.2x.
func appendBurn(b []byte, v float64) []byte {
	b = strconv.AppendFloat(b, v, 'f', 1, 64)
	return append(b, 'x')
}

// appendDur writes a duration compactly: 850ms, 1.2s, 45s, 5m, 1h30m, 12m3s.
func appendDur(b []byte, d time.Duration) []byte {
	if d < 0 {
		b = append(b, '-')
		d = -d
	}
	switch {
	case d < time.Second:
		b = strconv.AppendInt(b, int64(d/time.Millisecond), 10)
		return append(b, 'm', 's')
	case d < time.Minute:
		n := len(b)
		b = strconv.AppendFloat(b, d.Seconds(), 'f', 1, 64)
		b = trimZeros(b, n)
		return append(b, 's')
	}
	d = d.Truncate(time.Second)
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	if h > 0 {
		b = strconv.AppendInt(b, h, 10)
		b = append(b, 'h')
	}
	if m > 0 {
		b = strconv.AppendInt(b, m, 10)
		b = append(b, 'm')
	}
	if s > 0 {
		b = strconv.AppendInt(b, s, 10)
		b = append(b, 's')
	}
	return b
}

// FormatDuration renders d as the reasons and metric labels do ("5m", "1h", "1.2s").
func FormatDuration(d time.Duration) string { return string(appendDur(nil, d)) }
