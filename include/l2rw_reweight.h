/* l2rw reweighting methods. Included by l2rw.h. */
#ifndef L2RW_REWEIGHT_H
#define L2RW_REWEIGHT_H
#endif
