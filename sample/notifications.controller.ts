import { Body, Controller, Post, Sse, type MessageEvent } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { PubSubService } from '../lib/index.js';

export interface Notification {
  text: string;
  at: Date;
}

/**
 * Live notifications over Server-Sent Events, fed by pub/sub: every instance of the app that a
 * client is connected to relays what any instance publishes. At most once: a client that is not
 * connected misses what is published meanwhile.
 */
@Controller('notifications')
export class NotificationsController {
  constructor(private readonly pubsub: PubSubService) {}

  /** `curl -N http://127.0.0.1:3000/notifications/stream` */
  @Sse('stream')
  stream(): Observable<MessageEvent> {
    return this.pubsub.subscribe<Notification>('notifications').pipe(map((notification) => ({ data: notification })));
  }

  /** `curl -X POST -H 'content-type: application/json' -d '{"text":"hi"}' http://127.0.0.1:3000/notifications` */
  @Post()
  async publish(@Body() body: { text: string }): Promise<{ receivers: number }> {
    return { receivers: await this.pubsub.publish('notifications', { text: String(body.text), at: new Date() } satisfies Notification) };
  }
}
