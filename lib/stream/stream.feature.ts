import { defineFeature } from '../core/feature.js';
import { OnStreamMessageExplorer } from './on-stream-message.explorer.js';
import { StreamService } from './stream.service.js';

/** Streams: `StreamService` and `@OnStreamMessage`. Stream keys carry no TTL and must not be evicted. */
export const streamFeature = defineFeature({
  name: 'streams',
  providers: [StreamService, OnStreamMessageExplorer],
  exports: [StreamService],
  keys: { durability: 'durable', inUse: (ref) => ref.get(OnStreamMessageExplorer).inUse },
  keySegments: ['stream'],
});
