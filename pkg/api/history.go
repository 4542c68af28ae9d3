package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// History is a service's recent per-region samples, oldest first, in fixed buckets ending at
// End: bucket i covers [End - (len-i)*Bucket, End - (len-i-1)*Bucket). A bucket holds the value
// seen at the last loop iteration within it; a bucket without one (the daemon was not running,
// not leading the loop, or the value was unknown) is NaN, encoded as null in JSON.
type History struct {
	// Bucket is the span of one sample, in seconds in JSON.
	Bucket time.Duration `json:"-"`
	// End is the end of the newest bucket.
	End time.Time `json:"end"`
	// ErrorThreshold is the service's health.error_ratio.unhealthy, the sparklines' reference.
	ErrorThreshold float64         `json:"error_threshold"`
	Regions        []RegionHistory `json:"regions"`
}

// RegionHistory is one region's samples.
type RegionHistory struct {
	Region string `json:"region"`
	// Share is the region's traffic share in percent (0..100) as read back from the router.
	Share Series `json:"share"`
	// ErrorRatio is the evaluator's error ratio (0..1) over the health window; NaN when the
	// region served no request in the window or had no metric data.
	ErrorRatio Series `json:"error_ratio"`
}

type historyJSON struct {
	BucketSeconds  float64         `json:"bucket_seconds"`
	End            time.Time       `json:"end"`
	ErrorThreshold float64         `json:"error_threshold"`
	Regions        []RegionHistory `json:"regions"`
}

// MarshalJSON writes the bucket as bucket_seconds.
func (h History) MarshalJSON() ([]byte, error) {
	return json.Marshal(historyJSON{BucketSeconds: h.Bucket.Seconds(), End: h.End, ErrorThreshold: h.ErrorThreshold, Regions: h.Regions})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (h *History) UnmarshalJSON(b []byte) error {
	var j historyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = History{Bucket: time.Duration(j.BucketSeconds * float64(time.Second)), End: j.End, ErrorThreshold: j.ErrorThreshold, Regions: j.Regions}
	return nil
}

// Series is a run of samples; NaN marks a gap (null in JSON).
type Series []float32

// MarshalJSON writes NaN (and infinities, which a sample never holds) as null.
func (s Series) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 2+len(s)*6)
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads null as NaN.
func (s *Series) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*s = nil
		return nil
	}
	var raw []*float64
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("decode series: %w", err)
	}
	out := make(Series, len(raw))
	for i, v := range raw {
		if v == nil {
			out[i] = float32(math.NaN())
			continue
		}
		out[i] = float32(*v)
	}
	*s = out
	return nil
}
