import { defineFeature } from '../core/feature.js';
import { TRANSACTION_OPTIONS, type TransactionOptions } from './transaction.options.js';
import { resolveTransactionOptions } from './transaction.options-validator.js';
import { TransactionService } from './transaction.service.js';

/**
 * Optimistic transactions: `TransactionService`, with the `transaction` section (the pool of
 * dedicated connections). The keys are the app's own: it decides whether they may be evicted.
 */
export const transactionFeature = defineFeature({
  name: 'optimistic transactions',
  section: {
    name: 'transaction',
    token: TRANSACTION_OPTIONS,
    resolve: (given: TransactionOptions | undefined) => resolveTransactionOptions(given),
  },
  providers: [TransactionService],
  exports: [TransactionService],
});
