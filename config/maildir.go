package config

// MaildirSettings holds the settings of Maildir mailboxes.
type MaildirSettings struct{}

func defaultMaildir() MaildirSettings { return MaildirSettings{} }

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory.
func (s *MaildirSettings) resolvePaths(resolve func(string) string) {}

// validate checks the settings; c is the whole configuration.
func (s MaildirSettings) validate(c Config) error { return nil }
