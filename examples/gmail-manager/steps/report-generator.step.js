// report-generator (named by the tutorial's diagram): posts the nightly cleanup's numbers to Slack.
export default async function generateReport(event) {
  const { date, stats } = event.data
  await sendSlackNotification({
    channel: process.env.SLACK_REPORT_CHANNEL || '#email-reports',
    message: `Email report ${date}: ${stats.received} received, ${stats.spam} marked as spam`
  })
}
