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

/* End every session at shutdown (the workers have finished). */
void	 smtp_session_free_all(struct server *srv);

#endif
