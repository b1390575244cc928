package redis

import "strings"

// denied reports whether err is Redis refusing a command, or a key, to
// the store's user because of its ACL: NOPERM, or, from a script on Redis
// 7.0, "The user executing the script can't run this command or
// subcommand".
func denied(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "NOPERM") || strings.Contains(msg, "can't run this command")
}

// logJanitorError logs the error of a janitor pass over a partition or an
// activity queue (where: "partition", n, or "queue", name). A pass that
// Redis's ACL denies is logged at Error level, saying what it means: it
// will be denied at every pass, and without the janitor the tasks and
// activity attempts of workers that died are never delivered again. Any
// other error is logged as a warning: the next pass tries again.
func (s *Store) logJanitorError(err error, where ...any) {
	if denied(err) {
		s.log.Error("the janitor cannot run: Redis's ACL denies the store's user a command of the janitor "+
			"(ACL LOG on the server names it), so tasks and activity attempts of workers that died are not "+
			"delivered again; give the user the rules of redis.ACLRules for the store's prefix",
			append(where, "prefix", s.prefix, "err", err)...)
		return
	}
	s.log.Warn("janitor", append(where, "err", err)...)
}

// logReconcileError logs the error of a reconciler pass: at Error level,
// saying what it means, if Redis's ACL denies a command (every pass will
// be denied, and runs whose tasks or timers were lost stay stuck), else as
// a warning (the next pass tries again).
func (s *Store) logReconcileError(err error, where ...any) {
	if denied(err) {
		s.log.Error("the reconciler cannot run: Redis's ACL denies the store's user a command of the reconciler "+
			"(ACL LOG on the server names it), so runs whose tasks or timers were lost are not queued again; "+
			"give the user the rules of redis.ACLRules for the store's prefix",
			append(where, "prefix", s.prefix, "err", err)...)
		return
	}
	s.log.Warn("reconcile", append(where, "err", err)...)
}
