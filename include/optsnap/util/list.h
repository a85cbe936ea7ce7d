/* list.h - the one list shape: an intrusive, circular, doubly linked list
 * (libuv's queue.h and the Linux kernel's list.h are the models). A struct
 * embeds a `struct list_node`; a list is a head node. O(1) push, pop and
 * remove; no allocation. Pure. */
#ifndef OPTSNAP_LIST_H
#define OPTSNAP_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
    struct list_node *prev, *next;
};

/* The struct holding node: list_entry(n, struct batch, link). */
#define list_entry(node, type, member) ((type *)(void *)((char *)(node) - offsetof(type, member)))

static inline void list_init(struct list_node *head) { head->prev = head->next = head; }
static inline bool list_empty(const struct list_node *head) { return head->next == head; }
/* A node not in any list (after list_node_init or list_remove). */
static inline void list_node_init(struct list_node *n) { n->prev = n->next = NULL; }
static inline bool list_linked(const struct list_node *n) { return n->next != NULL; }

static inline void list_insert_between(struct list_node *n, struct list_node *prev, struct list_node *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

static inline void list_push_back(struct list_node *head, struct list_node *n)
{
    list_insert_between(n, head->prev, head);
}

static inline void list_push_front(struct list_node *head, struct list_node *n)
{
    list_insert_between(n, head, head->next);
}

static inline void list_remove(struct list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_node_init(n);
}

/* The first node, removed; NULL when empty. */
static inline struct list_node *list_pop_front(struct list_node *head)
{
    if (list_empty(head))
        return NULL;
    struct list_node *n = head->next;
    list_remove(n);
    return n;
}

/* The first node, or NULL when empty. */
static inline struct list_node *list_first(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

/* for (n = first; n != head; n = next), safe against removing n. */
#define list_for_each_safe(n, tmp, head) for ((n) = (head)->next, (tmp) = (n)->next; (n) != (head); (n) = (tmp), (tmp) = (n)->next)

#endif
