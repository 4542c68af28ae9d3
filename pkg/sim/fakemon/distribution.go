package fakemon

import (
	"fmt"
	"math"

	distributionpb "google.golang.org/genproto/googleapis/api/distribution"
	"google.golang.org/protobuf/proto"
)

// bucketBounds returns the lower and upper bound of bucket i of a distribution's bucket
// options, following google.api.Distribution: bucket 0 is the underflow bucket and the last
// one the overflow bucket. Unbounded sides are ±Inf.
func bucketBounds(o *distributionpb.Distribution_BucketOptions, i int) (lo, hi float64, err error) {
	switch {
	case o.GetExplicitBuckets() != nil:
		b := o.GetExplicitBuckets().GetBounds()
		lo, hi = math.Inf(-1), math.Inf(1)
		if i > 0 && i-1 < len(b) {
			lo = b[i-1]
		}
		if i < len(b) {
			hi = b[i]
		}
		return lo, hi, nil
	case o.GetExponentialBuckets() != nil:
		e := o.GetExponentialBuckets()
		n := int(e.GetNumFiniteBuckets())
		lo, hi = math.Inf(-1), math.Inf(1)
		if i > 0 {
			lo = e.GetScale() * math.Pow(e.GetGrowthFactor(), float64(i-1))
		}
		if i <= n {
			hi = e.GetScale() * math.Pow(e.GetGrowthFactor(), float64(i))
		}
		return lo, hi, nil
	case o.GetLinearBuckets() != nil:
		l := o.GetLinearBuckets()
		n := int(l.GetNumFiniteBuckets())
		lo, hi = math.Inf(-1), math.Inf(1)
		if i > 0 {
			lo = l.GetOffset() + l.GetWidth()*float64(i-1)
		}
		if i <= n {
			hi = l.GetOffset() + l.GetWidth()*float64(i)
		}
		return lo, hi, nil
	}
	return 0, 0, fmt.Errorf("distribution has no bucket options")
}

// mergeDist returns the merge of a and b (nil a = b). Bucket options must be identical, which is
// the case for all points of one Vertex AI metric.
func mergeDist(a, b *distributionpb.Distribution) (*distributionpb.Distribution, error) {
	if a == nil {
		return proto.Clone(b).(*distributionpb.Distribution), nil
	}
	if b.GetCount() == 0 {
		return a, nil
	}
	if a.GetCount() == 0 {
		return proto.Clone(b).(*distributionpb.Distribution), nil
	}
	if !proto.Equal(a.GetBucketOptions(), b.GetBucketOptions()) {
		return nil, fmt.Errorf("merging distributions with different bucket options is not supported by the fake")
	}
	na, nb := float64(a.GetCount()), float64(b.GetCount())
	n := na + nb
	mean := (a.GetMean()*na + b.GetMean()*nb) / n
	d := b.GetMean() - a.GetMean()
	ssd := a.GetSumOfSquaredDeviation() + b.GetSumOfSquaredDeviation() + d*d*na*nb/n
	counts := make([]int64, max(len(a.GetBucketCounts()), len(b.GetBucketCounts())))
	for i, c := range a.GetBucketCounts() {
		counts[i] += c
	}
	for i, c := range b.GetBucketCounts() {
		counts[i] += c
	}
	return &distributionpb.Distribution{
		Count:                 a.GetCount() + b.GetCount(),
		Mean:                  mean,
		SumOfSquaredDeviation: ssd,
		BucketOptions:         a.GetBucketOptions(),
		BucketCounts:          counts,
	}, nil
}

// percentile returns the p-th percentile (0..100) of d, interpolating linearly inside the
// bucket that holds the rank. An unbounded bucket yields its finite bound.
func percentile(d *distributionpb.Distribution, p float64) (float64, error) {
	if d.GetCount() == 0 {
		return 0, nil
	}
	counts := d.GetBucketCounts()
	if len(counts) == 0 {
		return d.GetMean(), nil
	}
	rank := p / 100 * float64(d.GetCount())
	var cum float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			lo, hi, err := bucketBounds(d.GetBucketOptions(), i)
			if err != nil {
				return 0, err
			}
			switch {
			case math.IsInf(lo, -1):
				return hi, nil
			case math.IsInf(hi, 1):
				return lo, nil
			}
			frac := (rank - cum) / float64(c)
			return lo + frac*(hi-lo), nil
		}
		cum += float64(c)
	}
	// Bucket counts sum to less than Count: fall back to the last non-empty bucket's bound.
	for i := len(counts) - 1; i >= 0; i-- {
		if counts[i] > 0 {
			lo, hi, err := bucketBounds(d.GetBucketOptions(), i)
			if err != nil {
				return 0, err
			}
			if math.IsInf(hi, 1) {
				return lo, nil
			}
			return hi, nil
		}
	}
	return d.GetMean(), nil
}
