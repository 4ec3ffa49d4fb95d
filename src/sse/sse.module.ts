import { Module } from '@nestjs/common';
import { StreamModule } from '../stream/stream.module';
import { SseController } from './sse.controller';
import { SseEntry } from './sse-entry';
import { SseService } from './sse.service';

@Module({
  imports: [StreamModule],
  controllers: [SseController],
  providers: [SseService, SseEntry],
  exports: [SseService],
})
export class SseModule {}
