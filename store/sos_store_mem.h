/*  sos_store_mem.h: the memory backend's side of the store's functions (internal to store/):
    each public function of sos_store.h calls its sos_mem_ twin when the store is a memory one. */
#ifndef SOS_STORE_MEM_H
#define SOS_STORE_MEM_H

#include "sos_store_int.h"

void sos_mem_destroy(sos_store_t *store);
sos_rc sos_mem_usage(sos_store_t *store, uint64_t *map_size, uint64_t *used);
sos_rc sos_mem_txn_begin(sos_store_t *store, bool write, sos_txn_t **txn_p);
sos_rc sos_mem_txn_commit(sos_txn_t *txn);
void sos_mem_txn_abort(sos_txn_t *txn);

sos_rc sos_mem_meta_get_u64(sos_txn_t *txn, const char *key, size_t klen, uint64_t *value);
/*  Inside the caller's operation (sos_meta_put_u64 brackets it). */
sos_rc sos_mem_meta_put_u64(sos_txn_t *txn, const char *key, size_t klen, uint64_t value);

sos_rc sos_mem_dir_put(sos_txn_t *txn, const sos_record_t *rec);
sos_rc sos_mem_dir_get_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], sos_record_t *rec,
                              sos_worker_local_t *local);
sos_rc sos_mem_dir_put_worker_local(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES],
                                    const sos_worker_local_t *local);
sos_rc sos_mem_dir_get_room(sos_txn_t *txn, const char *room_hash, sos_record_t *rec);
sos_rc sos_mem_dir_room_local_get(sos_txn_t *txn, const char *room_hash, sos_room_local_t *local);
sos_rc sos_mem_dir_room_local_put(sos_txn_t *txn, const char *room_hash,
                                  const sos_room_local_t *local);
sos_rc sos_mem_dir_del_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES]);
sos_rc sos_mem_dir_del_room(sos_txn_t *txn, const char *room_hash);
sos_rc sos_mem_dir_foreach_worker(sos_txn_t *txn, sos_dir_worker_fn *fn, void *arg);
sos_rc sos_mem_dir_foreach_room(sos_txn_t *txn, const char *after_hash, sos_dir_room_fn *fn,
                                void *arg);
sos_rc sos_mem_dir_foreach_since(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES],
                                 uint64_t since, sos_dir_wire_fn *fn, void *arg);
sos_rc sos_mem_dir_held_max(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES],
                            uint64_t *version);
sos_rc sos_mem_dir_foreach_origin(sos_txn_t *txn, sos_dir_origin_fn *fn, void *arg);
sos_rc sos_mem_dir_get_origin(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES],
                              sos_origin_t *out);
sos_rc sos_mem_dir_counts(sos_txn_t *txn, uint64_t *workers, uint64_t *rooms, uint64_t *origins);
sos_rc sos_mem_dir_tombstone_put(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES],
                                 uint64_t version, uint64_t expires_at);
sos_rc sos_mem_dir_tombstone_get(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES],
                                 uint64_t *version, uint64_t *expires_at);
sos_rc sos_mem_dir_tombstone_del(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES]);
sos_rc sos_mem_dir_tombstone_sweep(sos_txn_t *txn, uint64_t now_ms, uint32_t *removed);
sos_rc sos_mem_dir_foreach_expired(sos_txn_t *txn, uint64_t now_ms, sos_dir_expired_fn *fn,
                                   void *arg);
sos_rc sos_mem_dir_next_expiry(sos_txn_t *txn, uint64_t *expires_at);

#endif
