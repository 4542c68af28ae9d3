package gcp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	aiplatform "cloud.google.com/go/aiplatform/apiv1"
	compute "cloud.google.com/go/compute/apiv1"
	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
)

// Options are the client options for each cloud API. Nil means the production default
// (Application Default Credentials, the public endpoints, regional Vertex AI endpoints); the
// simulator passes options that point the same clients at its fakes.
type Options struct {
	MonitoringOptions []option.ClientOption
	// VertexOptions returns the options of a region's Vertex AI client; nil means
	// DefaultVertexOptions.
	VertexOptions  func(region string) []option.ClientOption
	ComputeOptions []option.ClientOption
	StorageOptions []option.ClientOption
}

// DefaultVertexOptions points a client at the region's Vertex AI endpoint
// ("us-central1-aiplatform.googleapis.com:443"): Vertex AI endpoints are regional.
func DefaultVertexOptions(region string) []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint(region + "-aiplatform.googleapis.com:443")}
}

// Clients are the cloud clients the adapters use. Close releases them all.
type Clients struct {
	Monitoring *monitoring.MetricClient
	Compute    *compute.UrlMapsClient
	// ComputeOps polls the URL map's global operations across loop iterations.
	ComputeOps *compute.GlobalOperationsClient
	Storage    *storage.Client
	Vertex     *VertexClients
}

// NewClients builds every client from o. The Vertex AI clients are created lazily, one per
// region, on first use.
func NewClients(ctx context.Context, o Options) (*Clients, error) {
	c := &Clients{Vertex: NewVertexClients(o.VertexOptions)}
	var err error
	if c.Monitoring, err = monitoring.NewMetricClient(ctx, o.MonitoringOptions...); err != nil {
		return nil, fmt.Errorf("create monitoring client: %w", err)
	}
	if c.Compute, err = compute.NewUrlMapsRESTClient(ctx, o.ComputeOptions...); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("create compute url maps client: %w", err)
	}
	if c.ComputeOps, err = compute.NewGlobalOperationsRESTClient(ctx, o.ComputeOptions...); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("create compute global operations client: %w", err)
	}
	if c.Storage, err = storage.NewClient(ctx, o.StorageOptions...); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("create storage client: %w", err)
	}
	return c, nil
}

// Close closes every client that was created.
func (c *Clients) Close() error {
	var errs []error
	if c.Monitoring != nil {
		errs = append(errs, c.Monitoring.Close())
	}
	if c.Compute != nil {
		errs = append(errs, c.Compute.Close())
	}
	if c.ComputeOps != nil {
		errs = append(errs, c.ComputeOps.Close())
	}
	if c.Storage != nil {
		errs = append(errs, c.Storage.Close())
	}
	if c.Vertex != nil {
		errs = append(errs, c.Vertex.Close())
	}
	return errors.Join(errs...)
}

// VertexClients holds one Vertex AI endpoint client per region, created on first use.
// It is safe for concurrent use.
type VertexClients struct {
	opts func(region string) []option.ClientOption

	mu      sync.Mutex
	clients map[string]*aiplatform.EndpointClient
}

// NewVertexClients returns a lazy pool; opts gives a region's client options (nil:
// DefaultVertexOptions).
func NewVertexClients(opts func(region string) []option.ClientOption) *VertexClients {
	if opts == nil {
		opts = DefaultVertexOptions
	}
	return &VertexClients{opts: opts, clients: map[string]*aiplatform.EndpointClient{}}
}

// Client returns the region's client, creating it on first use.
func (v *VertexClients) Client(ctx context.Context, region string) (*aiplatform.EndpointClient, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if c, ok := v.clients[region]; ok {
		return c, nil
	}
	c, err := aiplatform.NewEndpointClient(ctx, v.opts(region)...)
	if err != nil {
		return nil, fmt.Errorf("create vertex ai client for %s: %w", region, err)
	}
	v.clients[region] = c
	return c, nil
}

// Close closes every client created so far.
func (v *VertexClients) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var errs []error
	for region, c := range v.clients {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close vertex ai client for %s: %w", region, err))
		}
		delete(v.clients, region)
	}
	return errors.Join(errs...)
}
