package sim

import (
	"math"
	"math/rand/v2"
)

// poisson draws a Poisson-distributed count with mean lam: Knuth's method for small means and
// Hörmann's PTRS (transformed rejection with squeeze, as in numpy) otherwise. Deterministic for a
// given generator state.
func poisson(r *rand.Rand, lam float64) int64 {
	switch {
	case lam <= 0:
		return 0
	case lam < 10:
		l := math.Exp(-lam)
		var k int64
		p := 1.0
		for {
			p *= r.Float64()
			if p <= l {
				return k
			}
			k++
		}
	}
	slam := math.Sqrt(lam)
	loglam := math.Log(lam)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lam + 0.43)
		if us >= 0.07 && v <= vr {
			return int64(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -lam+k*loglam-lg {
			return int64(k)
		}
	}
}

// binomial draws the number of successes in n trials of probability p: geometric waiting times
// when n*p is small, a rounded normal approximation otherwise.
func binomial(r *rand.Rand, n int64, p float64) int64 {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	case p > 0.5:
		return n - binomial(r, n, 1-p)
	}
	mean := float64(n) * p
	if mean < 30 {
		lq := math.Log1p(-p)
		var count, pos int64
		for {
			pos += int64(math.Floor(math.Log(1-r.Float64())/lq)) + 1
			if pos > n {
				return count
			}
			count++
		}
	}
	x := math.Round(mean + math.Sqrt(mean*(1-p))*r.NormFloat64())
	return int64(math.Max(0, math.Min(float64(n), x)))
}

// normCDF is the standard normal cumulative distribution function.
func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
