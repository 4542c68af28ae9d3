package gauges

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Registry is a prometheus.Registry that also knows which of its collectors are Streamers, so
// that /metrics can write their families straight to the text format (Split) instead of
// gathering every series at once. Its Gather gathers everything, as a prometheus.Registry does
// (tests compare through it). A collector is registered in full (its Describe checked against
// every other collector's); one wrapped by prometheus.WrapRegistererWith is no Streamer and is
// gathered with the rest. Streamers are told apart by identity (Unregister compares them with
// ==): implement Streamer on a pointer.
type Registry struct {
	all  *prometheus.Registry // every collector: Gather, and the consistency checks of Register
	rest *prometheus.Registry // the collectors that are not Streamers

	mu        sync.Mutex // guards streamers
	streamers []streamCollector
}

type streamCollector interface {
	prometheus.Collector
	Streamer
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{all: prometheus.NewRegistry(), rest: prometheus.NewRegistry()}
}

// Register implements prometheus.Registerer.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.all.Register(c); err != nil {
		return err
	}
	if s, ok := c.(streamCollector); ok {
		r.mu.Lock()
		r.streamers = append(r.streamers, s)
		r.mu.Unlock()
		return nil
	}
	if err := r.rest.Register(c); err != nil {
		r.all.Unregister(c)
		return err
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (r *Registry) Unregister(c prometheus.Collector) bool {
	if !r.all.Unregister(c) {
		return false
	}
	if s, ok := c.(streamCollector); ok {
		r.mu.Lock()
		r.streamers = slices.DeleteFunc(r.streamers, func(x streamCollector) bool { return x == s })
		r.mu.Unlock()
		return true
	}
	r.rest.Unregister(c)
	return true
}

// Gather implements prometheus.Gatherer: every family of every collector, as
// prometheus.Registry.Gather returns them.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) { return r.all.Gather() }

// Split returns a gatherer of the collectors that are not Streamers and the Streamers, in the
// order they were registered.
func (r *Registry) Split() (prometheus.Gatherer, []Streamer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Streamer, len(r.streamers))
	for i, s := range r.streamers {
		out[i] = s
	}
	return r.rest, out
}
