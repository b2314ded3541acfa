/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp_session.h - one SMTP connection.
 */
#ifndef OOBD_SMTP_SESSION_H
#define OOBD_SMTP_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

struct server;
struct listener;

/* Take over an accepted connection: greet, then serve it until it ends. */
void	 smtp_session_start(struct server *srv, struct listener *l,
	    evutil_socket_t fd, const struct sockaddr *peer, int peerlen);

/*
 * SIGTERM: answer every session that waits for a command with 421 4.3.2
 * and close it; a session in DATA or waiting for its records finishes its
 * transaction and is closed after that reply.
 */
void	 smtp_session_drain(struct server *srv);

/* End every session at shutdown (the workers have finished). */
void	 smtp_session_free_all(struct server *srv);

#endif
