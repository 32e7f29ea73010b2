// Package mailer sends the mocks' plain-text mail over SMTP: the broker's sign-in links
// and the vendor's verification links. It speaks to the harness's mail catcher only, so
// it offers neither authentication nor TLS, and it checks recipient addresses strictly
// enough that nothing a client sends can add a header or a second recipient.
package mailer
