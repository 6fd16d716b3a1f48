package httpapi

import (
	"context"
	"net/url"
)

func fwdPath(org, name string) string { return orgPath(org) + "/forwarders/" + url.PathEscape(name) }

// CreateForwarder creates a forwarder.
func (c *Client) CreateForwarder(ctx context.Context, org string, v ForwarderView) (*ForwarderView, error) {
	var out ForwarderView
	_, err := c.Do(ctx, "POST", orgPath(org)+"/forwarders", nil, jsonBody(v), nil, &out)
	return &out, err
}

// ListForwarders lists an org's forwarders with their status.
func (c *Client) ListForwarders(ctx context.Context, org string) ([]ForwarderView, error) {
	var out struct {
		Items []ForwarderView `json:"items"`
	}
	_, err := c.Do(ctx, "GET", orgPath(org)+"/forwarders", nil, nil, nil, &out)
	return out.Items, err
}

// GetForwarder returns a forwarder with its status (secrets masked).
func (c *Client) GetForwarder(ctx context.Context, org, name string) (*ForwarderView, error) {
	var out ForwarderView
	_, err := c.Do(ctx, "GET", fwdPath(org, name), nil, nil, nil, &out)
	return &out, err
}

// PutForwarder replaces a forwarder; "***" secrets keep the stored ones.
func (c *Client) PutForwarder(ctx context.Context, org, name string, v ForwarderView) (*ForwarderView, error) {
	var out ForwarderView
	_, err := c.Do(ctx, "PUT", fwdPath(org, name), nil, jsonBody(v), nil, &out)
	return &out, err
}

// PatchForwarder applies a JSON merge patch to a forwarder.
func (c *Client) PatchForwarder(ctx context.Context, org, name string, patch map[string]any) (*ForwarderView, error) {
	var out ForwarderView
	_, err := c.Do(ctx, "PATCH", fwdPath(org, name), nil, jsonBody(patch), nil, &out)
	return &out, err
}

// DeleteForwarder deletes a forwarder and its cursors.
func (c *Client) DeleteForwarder(ctx context.Context, org, name string) error {
	_, err := c.Do(ctx, "DELETE", fwdPath(org, name), nil, nil, nil, nil)
	return err
}

// PauseForwarder pauses delivery.
func (c *Client) PauseForwarder(ctx context.Context, org, name string) (*ForwarderView, error) {
	var out ForwarderView
	_, err := c.Do(ctx, "POST", fwdPath(org, name)+"/pause", nil, nil, nil, &out)
	return &out, err
}

// ResumeForwarder resumes (and un-parks) delivery.
func (c *Client) ResumeForwarder(ctx context.Context, org, name string) (*ForwarderView, error) {
	var out ForwarderView
	_, err := c.Do(ctx, "POST", fwdPath(org, name)+"/resume", nil, nil, nil, &out)
	return &out, err
}

// ReplayForwarder moves a forwarder's cursors to a seq or a time.
func (c *Client) ReplayForwarder(ctx context.Context, org, name string, in ReplayInput) (*ForwarderStatusView, error) {
	var out ForwarderStatusView
	_, err := c.Do(ctx, "POST", fwdPath(org, name)+"/replay", nil, jsonBody(in), nil, &out)
	return &out, err
}

// TestForwarder sends one synthetic event and returns the sink's answer.
func (c *Client) TestForwarder(ctx context.Context, org, name string) (*ForwarderTestView, error) {
	var out ForwarderTestView
	_, err := c.Do(ctx, "POST", fwdPath(org, name)+"/test", nil, nil, nil, &out)
	return &out, err
}

// ForwarderStatus returns a forwarder's cursors, lag and state.
func (c *Client) ForwarderStatus(ctx context.Context, org, name string) (*ForwarderStatusView, error) {
	var out ForwarderStatusView
	_, err := c.Do(ctx, "GET", fwdPath(org, name)+"/status", nil, nil, nil, &out)
	return &out, err
}
