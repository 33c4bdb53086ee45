package outbound

import "fmt"

// Uses holds one Client per kind of outbound request, each with its own
// allow-list: what an anonymous verify-url caller may reach must not widen
// because an operator let webhooks reach an internal receiver.
type Uses struct {
	Verify  *Client // POST /api/verify-url downloads (anonymous callers too)
	Webhook *Client // signed webhook POSTs to callback URLs
	Model   *Client // model_file_url downloads and remote model endpoints
}

// UseAllows are the comma-separated allow-list settings of each use (see
// ParseAllowList); the setting names label errors.
type UseAllows struct {
	Verify, Webhook, Model string
}

// NewUses builds the three clients; an error names the setting at fault.
func NewUses(a UseAllows) (Uses, error) {
	var u Uses
	for _, x := range []struct {
		name, list string
		dst        **Client
	}{
		{"WARDEN_VERIFY_URL_ALLOW", a.Verify, &u.Verify},
		{"WARDEN_WEBHOOK_ALLOW", a.Webhook, &u.Webhook},
		{"WARDEN_MODEL_URL_ALLOW", a.Model, &u.Model},
	} {
		allow, err := ParseAllowList(x.list)
		if err != nil {
			return u, fmt.Errorf("%s: %w", x.name, err)
		}
		if *x.dst, err = New(Config{Allow: allow}); err != nil {
			return u, fmt.Errorf("%s: %w", x.name, err)
		}
	}
	return u, nil
}
