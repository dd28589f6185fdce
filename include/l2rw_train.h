/* l2rw training loop. Included by l2rw.h. */
#ifndef L2RW_TRAIN_H
#define L2RW_TRAIN_H
#endif
