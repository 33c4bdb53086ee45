package media

import (
	"crypto/x509"
	"fmt"
	"time"
)

// VerifyChain checks that chain[0] (the signer) chains to roots through the
// other certificates at the given time. Extended key usages are left to the
// caller, whose profile (C2PA claim signer, camera device) decides them.
func VerifyChain(chain []*x509.Certificate, roots *x509.CertPool, at time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("certificate chain not trusted: %w", err)
	}
	return nil
}
